"""The kata frame inside pytest: which code the specs run against, rule tags, teaching failures.

The entry pytest loads (conftest.py, grading's `-p` list); its rooms are in kata_tools/plugin/.

- `--solutions` (or KATA_SOLUTIONS=1) runs the same specs against solutions/ instead of katas/.
- `--kata-source DIR` runs them against DIR/NN_name/ (the project's own tests use it for mistakes).
- `--lang ko|en` picks the language of every message (same as KATA_LANG; see kata_tools.i18n).
- every spec must carry `@pytest.mark.rule("ID")` with an id of katas/rules.toml.
- a failing spec shows its teaching message, not a stack of frames (`--tb=long` brings those back):
  line 1 what the code did, line 2 what to change (the spec's message), line 3
  `spec: <nodeid>  rule: <id> <rule title>` (kata_tools.plugin.failures).
- `--kata-report FILE` writes one JSON record per spec: nodeid, kata, name, rules, doc (the
  spec's first docstring line, a string), outcome, message (what the default run showed, line 3
  included), duration.

What the plugin does so that a learner's mistake fails one spec with one message, and the run
goes on and ends:

- Around every spec it records what the learner's code left behind (`probes.Leftovers`): a
  coroutine never awaited, an `asyncio.gather(...)` or task nobody awaited, an unclosed
  connection. It collects garbage at the end of the spec's call and teardown, so these fail THAT
  spec with one message (never the next spec, never an "unraisable exception" dump).
- A learner file that does not import (missing, SyntaxError, any exception, SystemExit) is
  reported in full once per run; the kata's other specs fail with one line pointing up
  (kata_tools.plugin.learner_files).
- Timeouts stop learner code, and a run ends in time (kata_tools.plugin.timeouts).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from kata_tools import catalog, i18n, probes
from kata_tools.loader import LearnerImportFailed, use_solutions
from kata_tools.plugin import failures, timeouts
from kata_tools.plugin.failures import render, teach_without_traceback, teaching_message
from kata_tools.plugin.saved_progress import save_progress
from kata_tools.plugin.shared import (
    EXIT,
    IMPORT_FAILED,
    LEFTOVERS,
    MODULES,
    MSG,
    RESULTS,
    is_spec,
    record,
    rules_of,
    write_report,
)
from kata_tools.spec_report import CALL_REPORT  # the contract with the database plugin

if TYPE_CHECKING:  # pytest's class of test failures, public only as pytest.fail.Exception
    from _pytest.outcomes import Failed
else:
    Failed = pytest.fail.Exception

# The plugin's other rooms with hooks or fixtures: pytest registers them right after this module
# (the hook order stays that of one module). Imported above already, so each one's docstring says
# PYTEST_DONT_REWRITE: they hold no assert to rewrite, and pytest would warn.
pytest_plugins = [
    "kata_tools.plugin.learner_files",
    "kata_tools.plugin.timeouts",
    "kata_tools.plugin.saved_progress",
]


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
    config.stash[RESULTS] = {}
    config.stash[MODULES] = {}
    config.stash[IMPORT_FAILED] = {}
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
    failures.guard_ast_parse()
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, timeouts.on_sigint)


def pytest_report_header(config: pytest.Config) -> str:
    source = config.getoption("kata_source") or os.environ.get("KATA_SOURCE")
    if source:
        return MSG("header-source", source=source)
    if use_solutions(config):
        return MSG("header-solutions")
    return MSG("header-katas")


# --- which items are specs ----------------------------------------------------------------------


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
        if config.option.tbstyle == "auto":
            teach_without_traceback(item)


# --- leftovers: what a spec's code left behind fails that spec ---------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    if not is_spec(item):
        return (yield)
    leftovers = probes.Leftovers()
    item.stash[LEFTOVERS] = leftovers
    with leftovers:
        try:
            return (yield)
        finally:
            timeouts.cancel_timer(item)
            leftovers.check().take()  # anything still dropped now is this spec's: never the next's
            # What survives is kept by the run (modules, caches): later collections need not scan
            # it again, so checking every spec costs a fraction of a millisecond, not 65 ms.
            gc.freeze()


class LeftBehind(Failed):
    """A spec's code left a coroutine unawaited, a task unretrieved, a connection open."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with timeouts.interruptible(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with timeouts.interruptible(item):
        result = yield
    leftovers = item.stash.get(LEFTOVERS, None)
    if leftovers is not None and leftovers.check():
        raise LeftBehind(leftovers.take().message(), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    with timeouts.interruptible(item):
        result = yield
    leftovers = item.stash.get(LEFTOVERS, None)
    if leftovers is None:
        return result
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):  # pytest keeps the last failure: it would hold what it left
            delattr(sys, name)
    if leftovers.check():
        left = leftovers.take()
        call = item.stash.get(CALL_REPORT, None)
        timed_out = timeouts.fired_for(item)
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
    kept = item.config.stash[RESULTS].get(item.nodeid)
    if kept is not None:
        kept["message"] = shown


# --- a spec's report and record -----------------------------------------------------------------


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
        shown: str | None
        recorded: str | None
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
    results = item.config.stash[RESULTS]
    if item.nodeid in results and results[item.nodeid]["outcome"] != "passed":
        return  # keep the first failure (a teardown error after a failed call adds nothing)
    outcome = ("failed" if report.when == "call" else "error") if report.failed else report.outcome
    results[item.nodeid] = record(item, outcome, message, report.duration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    save_progress(session)
    write_report(session.config, exitstatus)
    session.config.stash[EXIT] = int(exitstatus)
    if any(is_spec(i) for i in getattr(session, "items", None) or []):
        # The last safety net: whatever keeps the process alive after the specs (a learner's
        # thread Python would join, a stuck finalizer) ends here, with the run's exit status.
        timeouts.end_later(int(exitstatus))
