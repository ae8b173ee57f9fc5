"""A failing spec's teaching message: line 1 what the code did, line 2 what to change, line 3
`spec: <nodeid>  rule: <id> <title>`; text after a blank line only with -v.

Python 3.11 only: pytest formats failures with ast.parse; a garbage collection inside it can run
a finalizer that parses again (asyncio logging "exception was never retrieved" formats a
traceback, which calls ast.parse), and 3.11's AST converter keeps its recursion depth in
per-interpreter state, so the outer parse ends with "SystemError: AST constructor recursion
depth mismatch" and an INTERNALERROR. guard_ast_parse() runs ast.parse with the collector paused
(3.12+ collects only between bytecodes, 3.10 has no such check).
"""

from __future__ import annotations

import ast
import gc
import re
import sys
from pathlib import Path

import pytest

from kata_tools import catalog, i18n
from kata_tools.loader import LearnerNameMissing, display
from kata_tools.plugin.shared import MAX_LINES, MSG, rules_of


def guard_ast_parse() -> None:
    """Run ast.parse with the garbage collector paused (Python 3.11; see the module docstring).

    In 3.11 a collection can start inside the AST converter (at an object allocation); a
    finalizer it runs (a Future logging "exception was never retrieved" with its traceback)
    calls ast.parse again, which resets the converter's shared recursion depth: the outer call
    then raises SystemError. Paused, no finalizer runs inside the converter; the garbage goes
    at the next collection. 3.12+ runs collections only between bytecodes (never inside C
    code), and 3.10's converter has no depth check, so they need nothing.
    """
    if sys.version_info[:2] != (3, 11) or getattr(ast.parse, "_kata_guarded", False):
        return
    parse = ast.parse

    def guarded_parse(*args, **kwargs):
        paused = gc.isenabled()
        if paused:
            gc.disable()
        try:
            return parse(*args, **kwargs)
        finally:
            if paused:
                gc.enable()

    guarded_parse._kata_guarded = True
    guarded_parse.__wrapped__ = parse
    guarded_parse.__doc__ = parse.__doc__
    ast.parse = guarded_parse


def _learner_frame(excinfo: pytest.ExceptionInfo) -> str | None:
    """file:line of the deepest frame that is not a spec or a library (the learner's own line)."""
    for entry in reversed(excinfo.traceback):
        path = Path(str(entry.path))
        kata = catalog.kata_of(path)
        if kata and not path.name.startswith("test_"):
            return f"{display(path)}:{entry.lineno + 1}"
    return None


def _assertion_message(text: str) -> str:
    # pytest renders `assert x, msg` as "msg\nassert <introspection>", with the lines of a
    # multi-line msg after the first indented by two spaces; the spec's msg teaches.
    head, sep, _ = text.partition("\nassert ")
    if not sep and text.startswith("assert "):
        return ""
    first, *rest = head.strip().split("\n")
    if rest and all(not line.strip() or line.startswith("  ") for line in rest):
        rest = [line[2:] if line.startswith("  ") else "" for line in rest]
    return "\n".join([first, *rest]).strip()


def rule_titles(ids: list[str]) -> str:
    known = catalog.rules()
    return "; ".join(f"{r} {known[r].title_in(i18n.current())}" if r in known else r for r in ids)


def render(item: pytest.Item, body: str, verbose: bool | None = None) -> str:
    """The spec's message as shown: its lines before a blank line (all with -v), then line 3."""
    if verbose is None:
        verbose = item.config.option.verbose > 0
    body = re.sub(r"\n[ \t]+\n", "\n\n", body.strip("\n"))
    head = body.partition("\n\n")[0]
    shown = body if verbose else head
    return shown.rstrip() + "\n" + MSG("spec-line", nodeid=item.nodeid, rules=rule_titles(rules_of(item)))


def _leaves(group: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in getattr(group, "exceptions", ()):
        out.extend(_leaves(exc) if hasattr(exc, "exceptions") else [exc])
    return out


def _is_group(exc: BaseException) -> bool:
    return hasattr(exc, "exceptions") and isinstance(exc.exceptions, tuple)


def teaching_body(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """The lines 1-2 (and -v details) of a spec's failure, or None to keep pytest's own report."""
    rules = ", ".join(rules_of(item))
    exc = excinfo.value
    if _is_group(exc):
        leaves = _leaves(exc)
        teaching = [
            e
            for e in leaves
            if isinstance(e, (pytest.fail.Exception, NotImplementedError))
            or (isinstance(e, AssertionError) and _assertion_message(str(e)))
        ]
        first = teaching[0] if teaching else (leaves[0] if leaves else None)
        if first is None:
            return None
        inner = pytest.ExceptionInfo.from_exception(first)
        if teaching:
            return teaching_body(item, inner)
        where = _learner_frame(inner)
        error = f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''}".rstrip(": ")
        if where:
            return MSG("group-raised-at", count=len(leaves), error=error, where=where, rule=rules)
        return MSG("group-raised", count=len(leaves), error=error, rule=rules)
    if isinstance(exc, pytest.fail.Exception):
        msg = str(exc)
        if msg.startswith("Timeout"):  # pytest-timeout's, or ours (timeouts.TimedOut, with .where)
            timeout = msg.split(">")[-1].split("s")[0] if ">" in msg else "?"
            where = getattr(exc, "where", "") or _learner_frame(excinfo)
            if where:
                return MSG("timeout-at", timeout=timeout, where=where)
            return MSG("timeout", timeout=timeout)
        return msg
    if isinstance(exc, NotImplementedError):
        where = _learner_frame(excinfo) or "your kata file"
        return MSG("todo", where=where, rule=rules)
    if isinstance(exc, LearnerNameMissing):
        return str(exc)
    if isinstance(exc, AssertionError):
        message = _assertion_message(str(exc))
        return message or None
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    error = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    line = _learner_frame(excinfo)
    if line:
        return MSG("raised-at", error=error, where=line, rule=rules)
    if isinstance(exc, Exception):  # raised in the spec's own code, on what the learner's returned
        entry = excinfo.traceback[-1] if excinfo.traceback else None
        where = f"{display(Path(str(entry.path)))}:{entry.lineno + 1}" if entry else item.nodeid
        return MSG("spec-error", error=error, where=where, rule=rules)
    return None


def teaching_message(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """A spec's failure as shown by default: lines 1-2, then line 3 (spec and rule); or None."""
    body = teaching_body(item, excinfo)
    return render(item, body) if body else None


def teach_without_traceback(item: pytest.Item) -> None:
    """With --tb=auto, a failing spec's report is its teaching message: build that, not the
    traceback pytest would build first and the plugin throw away (reading and formatting the
    source of every frame: 0.03 s a failure, a quarter of a stub's re-run in kata watch)."""
    original = item.repr_failure

    def repr_failure(excinfo, *args, **kwargs):
        return teaching_message(item, excinfo) or original(excinfo, *args, **kwargs)

    item.repr_failure = repr_failure  # type: ignore[method-assign]


def long_messages(records, limit: int = MAX_LINES) -> list[str]:
    """'nodeid: N lines' for each --kata-report record whose failure message is over `limit` lines."""
    out = []
    for r in records:
        lines = (r.get("message") or "").strip("\n").splitlines()
        if r.get("outcome") in ("failed", "error") and len(lines) > limit:
            out.append(f"{r.get('nodeid')}: {len(lines)} lines")
    return out
