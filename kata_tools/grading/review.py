"""Learner code that reaches into the grader: listed in the report for a human to read.

A kata's learner code runs inside the pytest process that grades it, so it could in principle
rewrite what that process reports. The grader cross-checks two records (verdict.py) and checks
pytest's machinery against its originals (guard.py); this scan lists the lines of learner files
that touch what such a forgery needs: the grader's own modules, pytest itself and its internals,
exit handlers, the module table, the garbage collector, stack frames, ctypes, a hard exit, raw
file descriptors, code built or run at run time (runpy), a path into solutions/, and an
attribute of an imported module or class replaced (`pytest.TestReport.from_item_and_call = ...`).
A listed line changes no score; it says where to look.

Two passes, neither imports the file. The text pass matches spelled-out names on every line that
is not a comment. The code pass parses the file (ast) and judges code only, never docstrings:
imports of pytest, _pytest, pluggy or runpy, string constants naming them or a solutions/ path,
and assignments, setattr and delattr on a name the file imported. Code that builds a name at run
time (getattr(__import__("a" + "texit"), ...), "solu" + "tions") is not found; docs/grading.md
says so.
"""

from __future__ import annotations

import ast
import re

PATTERNS = [
    ("kata_tools", r"\bkata_tools\b", "the grader's own package"),
    (
        "_pytest",
        r"\b_pytest\b|\bpytest\s*\.\s*(exit|main|hookimpl|Config|Session|StashKey)\b|\bpluggy\b",
        "pytest's internals or hooks",
    ),
    ("atexit", r"\batexit\b", "an exit handler"),
    ("sys.modules", r"\bsys\s*\.\s*modules\b", "the module table"),
    (
        "gc",
        r"\bimport\s+gc\b|\bgc\s*\.\s*get_(objects|referrers|referents)\b",
        "the garbage collector's object lists",
    ),
    (
        "frames",
        r"\binspect\s*\.\s*(currentframe|stack|getouterframes|getframeinfo)\b|\bsys\s*\.\s*_getframe\b|\bf_back\b|\bf_globals\b|\bf_locals\b|\btb_frame\b",
        "stack frames",
    ),
    ("ctypes", r"\bctypes\b|\bcffi\b", "raw memory access"),
    (
        "os._exit",
        r"\bos\s*\.\s*_exit\b|\bos\s*\.\s*(kill|abort)\b|\bsignal\s*\.\s*(signal|alarm|setitimer)\b",
        "a hard exit or signal",
    ),
    (
        "fd",
        r"/proc/self|\bos\s*\.\s*(write|dup2?|close|fdopen|closerange)\b|KATA_GRADE_FD|junit",
        "raw file descriptors or result files",
    ),
    (
        "trace",
        r"\bsys\s*\.\s*(settrace|setprofile|addaudithook|excepthook)\b|\bbuiltins\b|__builtins__",
        "interpreter hooks",
    ),
    (
        "dynamic",
        r"\b__import__\b|\bexec\s*\(|\beval\s*\(|\bcompile\s*\(|\bimportlib\b",
        "code built at run time",
    ),
]
COMPILED = [(what, re.compile(rx), why) for what, rx, why in PATTERNS]
MAX_PER_FILE = 20
LINE_CAP = 160


REACH = {  # imported module (its first name) -> (what, why)
    "pytest": ("pytest", "pytest itself, imported by learner code"),
    "_pytest": ("pytest", "pytest itself, imported by learner code"),
    "pluggy": ("pytest", "pytest itself, imported by learner code"),
    "runpy": ("runpy", "runs another file as code"),
}
SOLUTIONS = re.compile(r"(?:^|[/\\])solutions(?:[/\\]|$)")
PATCH = ("patch", "replaces an attribute of an imported module or class")
PATH = ("solutions", "a path into solutions/ (the reference solutions)")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are bare statements (docstrings): they run nothing."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }


def _root(node: ast.AST) -> str | None:
    """The name an attribute target hangs from: `pytest` of `pytest.TestReport.x`; None for a
    plain name, or one hanging from a call's result (`limiter().total_tokens`: an object's own)."""
    if not isinstance(node, ast.Attribute):
        return None
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _leaves(targets):
    for target in targets:
        if isinstance(target, (ast.Tuple, ast.List)):
            yield from _leaves(target.elts)
        elif isinstance(target, ast.Starred):
            yield from _leaves([target.value])
        else:
            yield target


def code_findings(text: str) -> list[tuple[int, str, str]]:
    """(line, what, why) from the parsed code; [] when the file does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    imported: set[str] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported.add(alias.asname or alias.name.split(".")[0])
                if alias.name.split(".")[0] in REACH:
                    found.append((node.lineno, *REACH[alias.name.split(".")[0]]))
        elif isinstance(node, ast.ImportFrom):
            imported.update(alias.asname or alias.name for alias in node.names)
            if node.level == 0 and (node.module or "").split(".")[0] in REACH:
                found.append((node.lineno, *REACH[(node.module or "").split(".")[0]]))
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            name = node.value.strip()
            if name.split(".")[0] in REACH and name.replace(".", "").replace("_", "").isalnum():
                found.append((node.lineno, *REACH[name.split(".")[0]]))
            elif SOLUTIONS.search(node.value):
                found.append((node.lineno, *PATH))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            if any(_root(leaf) in imported for leaf in _leaves(targets)):
                found.append((node.lineno, *PATCH))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("setattr", "delattr")
            and node.args
            and _root(node.args[0]) in imported
        ):
            found.append((node.lineno, *PATCH))
    return found


def scan(text: str, path: str) -> list[dict]:
    """[{"file", "line", "what", "why", "text"}] for the lines of `text` that reach into the grader."""
    lines = text.splitlines()
    hits: dict[tuple[int, str], str] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for what, rx, why in COMPILED:
            if rx.search(line):
                hits.setdefault((number, what), why)
                break
    for number, what, why in code_findings(text):
        hits.setdefault((number, what), why)
    found = []
    for (number, what), why in sorted(hits.items()):
        stripped = lines[number - 1].strip() if 0 < number <= len(lines) else ""
        found.append({"file": path, "line": number, "what": what, "why": why, "text": stripped[:LINE_CAP]})
        if len(found) >= MAX_PER_FILE:
            break
    return found
