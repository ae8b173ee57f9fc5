"""Learner code that reaches into the grader: listed in the report for a human to read.

A kata's learner code runs inside the pytest process that grades it, so it could in principle
rewrite what that process reports. The grader cross-checks two records (verdict.py), and this scan
lists the lines of learner files that touch what such a forgery needs: the grader's own modules,
pytest's internals, exit handlers, the module table, the garbage collector, stack frames, ctypes,
a hard exit, raw file descriptors. A listed line changes no score; it says where to look.

It reads the text of the file (no import): spelled-out names only. Code that builds a name at run
time (getattr(__import__("a" + "texit"), ...)) is not found; docs/grading.md says so.
"""

from __future__ import annotations

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


def scan(text: str, path: str) -> list[dict]:
    """[{"file", "line", "what", "why", "text"}] for the lines of `text` that match a pattern."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for what, rx, why in COMPILED:
            if rx.search(line):
                found.append(
                    {"file": path, "line": number, "what": what, "why": why, "text": stripped[:LINE_CAP]}
                )
                break
        if len(found) >= MAX_PER_FILE:
            break
    return found
