"""The kata frame inside pytest: which code the specs run against, rule tags, teaching failures.

- `--solutions` (or KATA_SOLUTIONS=1) runs the same specs against solutions/ instead of katas/.
- `--kata-source DIR` runs them against DIR/NN_name/ (the project's own tests use it for mistakes).
- `--lang ko|en` picks the language of every message (same as KATA_LANG; see kata_tools.i18n).
- every spec must carry `@pytest.mark.rule("ID")` with an id of katas/rules.toml.
- a failing spec shows its teaching message, not a stack of frames (`--tb=long` brings those back):
  line 1 what the code did, line 2 what to change (the spec's message), line 3
  `spec: <nodeid>  rule: <id> <rule title>`. Text after a blank line in a message: only with -v.
- `--kata-report FILE` writes one JSON record per spec: nodeid, kata, name, rules, doc (the
  spec's first docstring line, a string), outcome, message (what the default run showed, line 3
  included), duration. `long_messages(records)` lists the records whose message is too long.

What the plugin does so that a learner's mistake fails one spec with one message, and the run
goes on and ends:

- Around every spec it records what the learner's code left behind (`probes.Leftovers`): a
  coroutine never awaited, an `asyncio.gather(...)` or task nobody awaited, an unclosed
  connection. It collects garbage at the end of the spec's call and teardown, so these fail THAT
  spec with one message (never the next spec, never an "unraisable exception" dump).
- A learner file that does not import (missing, SyntaxError, any exception, SystemExit) is
  reported in full once per run; the kata's other specs fail with one line pointing up.
- Timeouts (pytest-timeout's `timeout`): on the first expiry the spec fails naming the learner
  line that was running; if more learner code keeps the thread busy (a CPU loop in every task of a
  gather), it is interrupted again every 0.25 s until the spec ends. Code that cannot be
  interrupted (a C call that never returns) ends the run after a grace period, with one line.
- After the last spec, a learner thread still running (a non-daemon thread, a `def` endpoint
  still sleeping) is named in one line and the run ends within 2 s instead of waiting for it.
- Python 3.11 only: pytest formats failures with ast.parse; a garbage collection inside it can run
  a finalizer that parses again (asyncio logging "exception was never retrieved" formats a
  traceback, which calls ast.parse), and 3.11's AST converter keeps its recursion depth in
  per-interpreter state, so the outer parse ends with "SystemError: AST constructor recursion
  depth mismatch" and an INTERNALERROR. The plugin runs ast.parse with the collector paused
  (3.12+ collects only between bytecodes, 3.10 has no such check).
"""

from __future__ import annotations

import ast
import gc
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from kata_tools import catalog, i18n, probes
from kata_tools.loader import (
    LearnerImportFailed,
    LearnerNameMissing,
    display,
    import_file,
    module_name,
    source_root,
    use_solutions,
)
from kata_tools.spec_report import CALL_REPORT  # the contract with the database plugin

_RESULTS = pytest.StashKey[dict]()
_MODULES = pytest.StashKey[dict]()
_IMPORT_FAILED = pytest.StashKey[dict]()  # learner file -> its LearnerImportFailed, shown once
_LEFTOVERS = pytest.StashKey[probes.Leftovers]()
_EXIT = pytest.StashKey[int]()
_STOPPED = pytest.StashKey[bool]()  # the spec's timeout fired (its timer may be gone by teardown)

MAX_LINES = 4  # a default-run failure message, line 3 included, is at most this long
REFIRE = 0.25  # seconds between interrupts once a spec timed out
REFIRES = 120  # then give up interrupting and let the watchdog end the run
STUCK_GRACE = 10.0  # seconds after a timeout before the watchdog ends a run stuck in C code
THREAD_GRACE = 1.0  # seconds a learner thread gets to finish after the last spec
END_GRACE = 12.0  # seconds after the session's end before the run is ended whatever holds it


def MSG(key: str, **fields) -> str:
    return i18n.tool("plugin")(key, **fields)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata", "katas")
    group.addoption(
        "--solutions",
        action="store_true",
        default=False,
        help="run the specs against the reference solutions/ instead of your katas/ "
        "(same as KATA_SOLUTIONS=1)",
    )
    group.addoption(
        "--kata-source",
        metavar="DIR",
        default=None,
        help="run the specs against DIR/NN_name/ files (same as KATA_SOURCE=DIR)",
    )
    group.addoption(
        "--kata-report",
        metavar="FILE",
        default=None,
        help="write a JSON record per spec: kata, rules, outcome, message",
    )
    group.addoption(
        "--lang",
        choices=list(i18n.LANGS),
        default=None,
        help="language of the katas' messages: ko or en (same as KATA_LANG)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}
    config.stash[_MODULES] = {}
    config.stash[_IMPORT_FAILED] = {}
    lang = config.getoption("lang", None)
    if lang:
        i18n.set_lang(lang)
    if use_solutions(config) and not (catalog.ROOT / "solutions").is_dir():
        # a student release (`kata release`) ships no solutions/
        raise pytest.UsageError(i18n.tool("grading")("release-no-solutions"))
    if config.option.tbstyle == "auto" and config.option.verbose < 2:
        # On CI (CI=true: GitHub Classroom, Actions) pytest's short summary repeats each
        # failure's whole message; a spec's message is shown once, above: one trimmed line here.
        config.option.force_short_summary = True
    _guard_ast_parse()
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _on_sigint)


def pytest_report_header(config: pytest.Config) -> str:
    source = config.getoption("kata_source") or os.environ.get("KATA_SOURCE")
    if source:
        return MSG("header-source", source=source)
    if use_solutions(config):
        return MSG("header-solutions")
    return MSG("header-katas")


# --- Python 3.11: no INTERNALERROR while pytest formats a failure -------------------------------


def _guard_ast_parse() -> None:
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


# --- which items are specs ----------------------------------------------------------------------


def is_spec(item: pytest.Item) -> bool:
    """A spec is a test in a kata folder (katas/NN_name/test_*.py or a copy of one)."""
    path = Path(item.path)
    return path.name.startswith("test_") and catalog.KATA_DIR.match(path.parent.name) is not None


def rules_of(item: pytest.Item) -> list[str]:
    return [rule for mark in item.iter_markers("rule") for rule in mark.args]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = catalog.rules()
    for item in items:
        if not is_spec(item):
            continue
        ids = rules_of(item)
        if not ids:
            raise pytest.UsageError(
                f"{item.nodeid}: every spec needs @pytest.mark.rule('ID') naming the rule it encodes"
            )
        unknown = [r for r in ids if r not in known]
        if unknown:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown rule id(s) {', '.join(unknown)}; "
                f"the rules are listed in katas/rules.toml"
            )


@pytest.fixture
def kata_module(request: pytest.FixtureRequest):
    """Import a file of this kata: the learner's (katas/), or the reference one (--solutions).

        mod = kata_module("event_loop.py")            # cached for the session
        mod = kata_module("app.py", fresh=True)       # a new module object, executed again

    A missing file, a syntax error or a crash at import (SystemExit too) fails the spec with the
    file and line; the kata's later specs fail with one line pointing to that message.
    """
    spec_path = Path(request.path)
    kata = spec_path.parent.name
    root = source_root(request.config, spec_path)
    cache = request.config.stash[_MODULES]
    failed = request.config.stash[_IMPORT_FAILED]

    def load(relpath: str, fresh: bool = False):
        path = (root / kata / relpath).resolve()
        key = str(path)
        if key in failed and not fresh:
            raise _repeated(failed[key])
        if fresh or key not in cache:
            try:
                cache[key] = import_file(path, module_name(kata, relpath))
            except LearnerImportFailed as e:
                earlier = failed.get(key)
                if earlier is not None and str(earlier) == str(e):
                    raise _repeated(earlier) from None
                failed[key] = e
                raise
        return cache[key]

    return load


def _repeated(first: LearnerImportFailed) -> LearnerImportFailed:
    again = LearnerImportFailed(
        MSG("import-skipped", file=first.file),
        file=first.file, where=first.where, error=first.error, kind=first.kind,
    )
    again.first = first  # the record keeps the full message: `kata` and grading show it
    return again


# --- leftovers: what a spec's code left behind fails that spec ---------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    if not is_spec(item):
        return (yield)
    leftovers = probes.Leftovers()
    item.stash[_LEFTOVERS] = leftovers
    with leftovers:
        try:
            return (yield)
        finally:
            _cancel_timer(item)
            leftovers.check().take()  # anything still dropped now is this spec's: never the next's
            # What survives is kept by the run (modules, caches): later collections need not scan
            # it again, so checking every spec costs a fraction of a millisecond, not 65 ms.
            gc.freeze()


class LeftBehind(pytest.fail.Exception):
    """A spec's code left a coroutine unawaited, a task unretrieved, a connection open."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _interruptible(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _interruptible(item):
        result = yield
    leftovers = item.stash.get(_LEFTOVERS, None)
    if leftovers is not None and leftovers.check():
        raise LeftBehind(leftovers.take().message(), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    with _interruptible(item):
        result = yield
    leftovers = item.stash.get(_LEFTOVERS, None)
    if leftovers is None:
        return result
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):  # pytest keeps the last failure: it would hold what it left
            delattr(sys, name)
    if leftovers.check():
        left = leftovers.take()
        call = item.stash.get(CALL_REPORT, None)
        timed_out = item.stash.get(_STOPPED, False) or (
            _TIMER is not None and _TIMER.item is item and bool(_TIMER.fired)
        )
        if timed_out:
            pass  # stopped by its timeout: what it left is a consequence; the timeout teaches
        elif call is not None and call.failed:
            _amend(item, call, left.message())
        else:
            raise LeftBehind(left.message(), pytrace=False)
    return result


def _amend(item: pytest.Item, report: pytest.TestReport, cause: str) -> None:
    """A failed spec whose code also left something behind: that is the cause, say it first."""
    shown = render(item, cause)
    if item.config.option.tbstyle == "auto":
        report.longrepr = shown
        report.sections = [s for s in report.sections if not s[0].startswith("Captured log")]
    record = item.config.stash[_RESULTS].get(item.nodeid)
    if record is not None:
        record["message"] = shown


# --- teaching failure output -------------------------------------------------------------------


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
    head, sep, details = body.partition("\n\n")
    shown = body if verbose else head
    return shown.rstrip() + "\n" + MSG("spec-line", nodeid=item.nodeid, rules=rule_titles(rules_of(item)))


def _leaves(group: BaseException) -> list[BaseException]:
    out = []
    for exc in getattr(group, "exceptions", ()):
        out.extend(_leaves(exc) if hasattr(exc, "exceptions") else [exc])
    return out


def _is_group(exc: BaseException) -> bool:
    return hasattr(exc, "exceptions") and isinstance(getattr(exc, "exceptions"), tuple)


def teaching_body(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> str | None:
    """The lines 1-2 (and -v details) of a spec's failure, or None to keep pytest's own report."""
    rules = ", ".join(rules_of(item))
    exc = excinfo.value
    if _is_group(exc):
        leaves = _leaves(exc)
        teaching = [e for e in leaves if isinstance(e, (pytest.fail.Exception, NotImplementedError))
                    or (isinstance(e, AssertionError) and _assertion_message(str(e)))]
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
        if isinstance(exc, _TimedOut) or msg.startswith("Timeout"):
            timeout = msg.split(">")[-1].split("s")[0] if ">" in msg else "?"
            where = getattr(exc, "where", "") or _learner_frame(excinfo)
            if where:
                return MSG("timeout-at", timeout=timeout, where=where)
            return MSG("timeout", timeout=timeout)
        return msg
    if isinstance(exc, NotImplementedError):
        line = _learner_frame(excinfo) or "your kata file"
        return MSG("todo", where=line, rule=rules)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report  # the database fixture's teardown reads it
    if not is_spec(item):
        return report
    if item.config.option.tbstyle == "auto":
        # Libraries' log records (a pool closing a connection the learner left open, with its
        # traceback) echo the cause the message names, in every phase: shown with --tb only.
        report.sections = [s for s in report.sections if not s[0].startswith("Captured log")]
    if report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        first = getattr(exc, "first", None)
        if isinstance(exc, LearnerImportFailed) and first is not None:
            shown = str(exc)  # one line: the full message was shown with the kata's first spec
            recorded = render(item, str(first))
        else:
            shown = recorded = teaching_message(item, call.excinfo)
        if shown and item.config.option.tbstyle == "auto":
            report.longrepr = shown
        _record(item, report, recorded or str(exc))
    elif report.when == "call" or report.skipped:
        _record(item, report, "")
    return report


def _record(item: pytest.Item, report: pytest.TestReport, message: str) -> None:
    results = item.config.stash[_RESULTS]
    if item.nodeid in results and results[item.nodeid]["outcome"] != "passed":
        return  # keep the first failure (a teardown error after a failed call adds nothing)
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
    else:
        outcome = report.outcome
    kata = catalog.kata_of(Path(item.path))
    doc = (getattr(item.obj, "__doc__", None) or "").strip().splitlines()
    results[item.nodeid] = {
        "nodeid": item.nodeid,
        "kata": kata.name if kata else None,
        "name": item.name,
        "rules": rules_of(item),
        "doc": doc[0] if doc else "",
        "outcome": outcome,
        "message": message,
        "duration": round(report.duration, 3),
    }


def long_messages(records, limit: int = MAX_LINES) -> list[str]:
    """'nodeid: N lines' for each --kata-report record whose failure message is over `limit` lines."""
    out = []
    for r in records:
        lines = (r.get("message") or "").strip("\n").splitlines()
        if r.get("outcome") in ("failed", "error") and len(lines) > limit:
            out.append(f"{r.get('nodeid')}: {len(lines)} lines")
    return out


def _write_report(config: pytest.Config, exitstatus: int) -> None:
    path = config.getoption("kata_report")
    if not path:
        return
    records = list(config.stash[_RESULTS].values())
    Path(path).write_text(
        json.dumps(
            {"created": time.time(), "exitstatus": int(exitstatus), "specs": records}, indent=2
        )
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _save_progress(session)
    _write_report(session.config, exitstatus)
    session.config.stash[_EXIT] = int(exitstatus)
    if any(is_spec(i) for i in getattr(session, "items", None) or []):
        # The last safety net: whatever keeps the process alive after the specs (a learner's
        # thread Python would join, a stuck finalizer) ends here, with the run's exit status.
        end = threading.Timer(END_GRACE, _end_now, (int(exitstatus),))
        end.daemon = True
        end.start()


def _end_now(status: int) -> None:
    for t, where in _lingering():
        sys.stderr.write(_thread_line(t, where) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _thread_line(t: threading.Thread, where: str) -> str:
    if where:
        return MSG("thread-left", name=t.name, where=where)
    return MSG("thread-left-nowhere", name=t.name)


# --- timeouts that stop learner code, and a run that ends ----------------------------------------


class _TimedOut(pytest.fail.Exception):
    """A spec ran past its timeout; `where` is the learner line that was running."""


class _Timer:
    def __init__(self, item: pytest.Item, timeout: float):
        self.item, self.timeout = item, timeout
        self.active = 0  # >0 while a phase (setup, call, teardown) of the spec runs
        self.fired = 0
        self.first_at = self.last_raise = 0.0
        self.where = ""
        self.watchdog: threading.Timer | None = None
        self.done = False


_TIMER: _Timer | None = None


class _interruptible:
    def __init__(self, item):
        self.timer = _TIMER if _TIMER is not None and _TIMER.item is item else None

    def __enter__(self):
        if self.timer:
            self.timer.active += 1

    def __exit__(self, *exc):
        if self.timer:
            self.timer.active -= 1
        return False


_STOPPING = {"since": 0.0}  # Ctrl-C: set when the learner's code is being stopped


def _on_alarm(signum, frame):
    if _STOPPING["since"]:
        _stop_after_interrupt(frame)
        return
    timer = _TIMER
    if timer is None or timer.done:
        return
    if not timer.active:  # between phases, in pytest's own code: try again in a moment
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    timer.fired += 1
    now = time.monotonic()
    if timer.fired == 1:
        timer.where = probes.frame_line(frame) or _awaiting_line()
        timer.first_at = now
        timer.watchdog = threading.Timer(STUCK_GRACE, _stuck, (timer,))
        timer.watchdog.daemon = True
        timer.watchdog.start()
    elif timer.fired > REFIRES:
        return  # the watchdog ends the run
    signal.setitimer(signal.ITIMER_REAL, REFIRE)  # more learner code still running? again
    if timer.fired > 1 and not probes.frame_line(frame):
        # Not in learner code. Only a wait for something the learner holds (the event loop's
        # select while a `def` endpoint sleeps in its thread, a thread join) is stopped too, and
        # seldom: once a second, from 2 s after the timeout on. Anywhere else, an exception
        # could leave asyncio or pytest half-way through their own bookkeeping.
        if not _waiting(frame) or now - timer.first_at < 2.0 or now - timer.last_raise < 1.0:
            return
    timer.last_raise = now
    failure = _TimedOut(f"Timeout >{timer.timeout}s", pytrace=False)
    failure.where = timer.where
    raise failure


def _waiting(frame) -> bool:
    """The main thread is blocked waiting: in a selector's select or a threading wait/join."""
    if frame is None:
        return False
    name, file = frame.f_code.co_name, Path(frame.f_code.co_filename).name
    return (file == "selectors.py" and name == "select") or (
        file == "threading.py" and name in ("wait", "join", "_wait_for_tstate_lock")
    )


def _awaiting_line() -> str:
    """The learner line a task of the running loop is suspended at (an await that never ends)."""
    try:
        import asyncio

        loop = asyncio._get_running_loop()
        if loop is None:
            return ""
        for task in asyncio.all_tasks(loop):
            frames, coro = [], task.get_coro()
            while coro is not None:  # the chain of awaits, outermost first
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is not None:
                    frames.append((frame.f_code.co_filename, frame.f_lineno))
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            where = probes.learner_line(frames)
            if where:
                return where
    except Exception:
        return ""
    return ""


def _on_sigint(signum, frame):
    """Ctrl-C: stop now, and keep stopping learner code that still runs (a CPU loop in each task
    of a gather would otherwise take one Ctrl-C per task)."""
    if not _STOPPING["since"]:
        _STOPPING["since"] = time.monotonic()
        if hasattr(signal, "setitimer"):
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, REFIRE)
    raise KeyboardInterrupt


def _stop_after_interrupt(frame) -> None:
    if time.monotonic() - _STOPPING["since"] > STUCK_GRACE:
        sys.stderr.write("\n" + MSG("interrupted", done="?", total="?") + "\n")
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.INTERRUPTED))
    signal.setitimer(signal.ITIMER_REAL, REFIRE)
    if probes.frame_line(frame):
        raise KeyboardInterrupt


def _stuck(timer: _Timer) -> None:
    """The watchdog: the spec stayed stuck after its timeout, in code a signal cannot stop."""
    if timer.done:
        return
    config = timer.item.config
    where = timer.where or "?"
    try:
        sys.stderr.write("\n" + MSG("stuck-exit", nodeid=timer.item.nodeid, where=where) + "\n")
        sys.stderr.flush()
        item = timer.item
        results = config.stash[_RESULTS]
        if item.nodeid not in results or results[item.nodeid]["outcome"] == "passed":
            kata = catalog.kata_of(Path(item.path))
            results[item.nodeid] = {
                "nodeid": item.nodeid, "kata": kata.name if kata else None, "name": item.name,
                "rules": rules_of(item), "doc": "", "outcome": "failed",
                "message": render(item, MSG("timeout-at", timeout=timer.timeout, where=where)),
                "duration": 0.0,
            }
        _write_report(config, pytest.ExitCode.INTERRUPTED)
    finally:
        os._exit(int(pytest.ExitCode.INTERRUPTED))


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings):
    """pytest-timeout's hook: for a spec, our signal timer that keeps interrupting (see above)."""
    global _TIMER
    if (
        not is_spec(item)
        or getattr(settings, "method", "signal") != "signal"
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "setitimer")
    ):
        return None
    _TIMER = _Timer(item, settings.timeout)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item):
    if _TIMER is None or _TIMER.item is not item:
        return None
    _cancel_timer(item)
    return True


def _cancel_timer(item: pytest.Item) -> None:
    global _TIMER
    timer = _TIMER
    if timer is None or timer.item is not item:
        return
    timer.done = True
    if timer.fired:
        item.stash[_STOPPED] = True  # read by the teardown: leftovers of a stopped spec are its echo
    if not _STOPPING["since"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if timer.watchdog is not None:
        timer.watchdog.cancel()
    _TIMER = None


def _lingering() -> list[tuple[threading.Thread, str]]:
    """Threads that would keep the interpreter from exiting, with the learner line each runs:
    non-daemon threads, and busy workers of thread pools (Python joins those at exit)."""
    out = []
    frames = sys._current_frames()
    for t in threading.enumerate():
        if t is threading.current_thread() or not t.is_alive():
            continue
        pool_worker = t.name.startswith(("ThreadPoolExecutor", "asyncio_"))
        if t.daemon and not pool_worker:
            continue
        frame = frames.get(t.ident)
        if pool_worker and (frame is None or frame.f_code.co_name == "_worker"):
            continue  # idle: waiting for work, it ends at exit
        out.append((t, probes.frame_line(frame) if frame is not None else ""))
    return out


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run now if a learner's thread would keep the process alive (see the docstring)."""
    if _EXIT not in config.stash:
        return
    deadline = time.monotonic() + THREAD_GRACE
    left = _lingering()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _lingering()
    if not left:
        return
    for t, where in left:
        sys.stderr.write(_thread_line(t, where) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(config.stash[_EXIT])


def pytest_keyboard_interrupt(excinfo) -> None:
    """Ctrl-C: one line, not a traceback (the specs that ran still show their results)."""
    session = _SESSION
    reporter = session.config.pluginmanager.get_plugin("terminalreporter") if session else None
    if reporter is None or isinstance(excinfo.value, pytest.Session.Interrupted):
        return  # "Interrupted: 1 error during collection" is pytest's, and says the right thing
    total = len(getattr(session, "items", []) or [])
    done = len(session.config.stash[_RESULTS])

    def one_line():
        reporter.write_line(MSG("interrupted", done=done, total=total))

    reporter._report_keyboardinterrupt = one_line


_SESSION: pytest.Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _SESSION
    _SESSION = session


# --- the learner's progress (.kata/results.json, read by `kata list`) ---------------------------

_DESELECTED = pytest.StashKey[set]()


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        kept = items[0].config.stash.setdefault(_DESELECTED, set())
        kept.update(Path(item.path).parent.name for item in items)


def _save_progress(session: pytest.Session) -> None:
    """Merge this run's spec results into .kata/results.json, when it ran the learner's katas/.

    Runs against solutions/ or --kata-source, and runs with KATA_NO_PROGRESS=1, leave it alone.
    A kata counts as completely run when all its spec files were collected, nothing of it was
    deselected or picked by `file::test`, and every collected spec has a result. A corrupt file
    is replaced (one warning line); a folder that cannot be written says so once.
    """
    config = session.config
    if (
        use_solutions(config)
        or config.getoption("kata_source")
        or os.environ.get("KATA_SOURCE")
        or os.environ.get("KATA_NO_PROGRESS")
    ):
        return
    try:
        results = config.stash[_RESULTS]
        katas_dir = catalog.KATAS.resolve()
        items: dict[str, list[pytest.Item]] = {}
        for item in getattr(session, "items", None) or []:
            path = Path(item.path).resolve()
            if is_spec(item) and path.parent.parent == katas_dir:
                items.setdefault(path.parent.name, []).append(item)
        if not items:
            return
        picked = {
            Path(arg.split("::")[0]).resolve().parent.name for arg in config.args if "::" in arg
        }
        deselected = config.stash.get(_DESELECTED, set())
        runs = {}
        for kata, kata_items in items.items():
            specs = {i.nodeid: results[i.nodeid] for i in kata_items if i.nodeid in results}
            files = {Path(i.path).resolve() for i in kata_items}
            on_disk = {p.resolve() for p in (catalog.KATAS / kata).glob("test_*.py")}
            complete = (
                files == on_disk
                and len(specs) == len(kata_items)
                and kata not in deselected
                and kata not in picked
            )
            if specs:
                runs[kata] = {"complete": complete, "specs": specs}
        if runs:
            from kata_tools import progress  # only now: keeps the plugin's import cost tiny

            lines = progress.merge_run(catalog.ROOT, runs)
            _say(config, lines)
    except Exception:  # progress is a convenience: it must never fail a learner's test run
        pass


def _say(config: pytest.Config, lines) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines or []:
        if reporter is not None:
            reporter.write_line(line, yellow=True)
        else:
            sys.stderr.write(line + "\n")
