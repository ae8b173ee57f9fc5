"""The grading child's reporter: what pytest itself saw, streamed to the parent through a pipe.

Loaded only in a grading child (`-p kata_tools.grading.probe`, with KATA_GRADE_FD naming the
write end of a pipe the parent holds). Each message is one JSON line, written the moment pytest
knows it, so a message already sent cannot be rewritten later by learner code (an exit handler,
a patched recorder); a run killed for its time limit still leaves the results so far.

    {"type": "collected", "specs": [{"nodeid": ..., "rules": [...]}]}   after collection
    {"type": "collect-error", "nodeid": ..., "message": ...}
    {"type": "report", "nodeid": ..., "when": "setup|call|teardown", "outcome": ..., "duration": ...}
    {"type": "message", "nodeid": ..., "when": ..., "message": ...}   the failure text shown
    {"type": "tampered", "what": ...}   pytest's machinery changed, or a report contradicts its call
    {"type": "finish", "exitstatus": 0}

A "report" is taken in the innermost wrapper of pytest_runtest_makereport, and its outcome is
derived from the call itself (`call.excinfo`: no exception passed, pytest's skip skipped, any
other failed), never only from the report object: a report factory replaced by learner code
(`pytest.TestReport.from_item_and_call = ...`) can make the report say "passed", not the call.
When the report says "passed" and the call raised, the probe says "tampered". JUnit is written
from the report object as later hooks leave it, so a change made to it on the way shows as a
disagreement between the two.

Before any conftest, spec or learner file is loaded (in pytest_load_initial_conftests, after
pytest's own plugins have patched its classes), it keeps the originals of pytest's machinery
(kata_tools/grading/guard.py) and checks them after every report, after collection and at the
session's end: a replaced one is "tampered". The hooks reach
what they use through a closure, so replacing a name of this module later changes nothing.

The parent cross-checks these against pytest's own JUnit file and the process exit code
(kata_tools/grading/verdict.py); neither alone decides a grade.
"""

from __future__ import annotations

import builtins
import json
import os

import pytest
from _pytest.outcomes import Skipped

from kata_tools.grading import guard

MESSAGE_CAP = 4000  # characters of a failure message sent; the parent caps again
RANK = {"passed": 0, "skipped": 1, "failed": 2}


def _hooks():
    """The hook functions, closed over what they use (see the module docstring)."""
    fd: list[int | None] = [None]
    told: set[str] = set()
    check: list = []  # the guard's changed(), made before any conftest is loaded
    write, dumps, environ, group = (
        os.write,
        json.dumps,
        os.environ,
        getattr(builtins, "BaseExceptionGroup", None),
    )

    def send(obj: dict) -> None:
        if fd[0] is None:
            return
        data = (dumps(obj, ensure_ascii=True) + "\n").encode("ascii")
        try:
            while data:
                data = data[write(fd[0], data) :]
        except OSError:
            pass  # the parent went away: nothing left to tell

    def tampered(what: str) -> None:
        if what not in told:
            told.add(what)
            send({"type": "tampered", "what": what[:300]})

    def verify() -> None:
        for name in check[0]() if check else ():
            tampered(name)

    def outcome_of(call) -> str:
        excinfo = call.excinfo
        if excinfo is None:
            return "passed"
        value = getattr(excinfo, "value", None)
        if isinstance(value, Skipped):
            return "skipped"
        if group is not None and isinstance(value, group) and value.split(Skipped)[1] is None:
            return "skipped"
        return "failed"

    def pytest_configure(config) -> None:
        value = environ.pop("KATA_GRADE_FD", "")  # gone before any learner code runs
        fd[0] = int(value) if value.isdigit() else None
        if fd[0] is not None:
            try:  # servers the specs start (the database's reaper) must not keep the pipe open
                os.set_inheritable(fd[0], False)
            except OSError:
                fd[0] = None

    def pytest_load_initial_conftests(early_config) -> None:
        # After pytest's own plugins patched its classes (legacypath, tryfirst), before any
        # conftest is loaded (pytest's loader runs trylast): no learner code has run yet.
        check.append(guard.snapshot())

    def pytest_collectreport(report) -> None:
        if report.failed:
            message = str(report.longreprtext)[:MESSAGE_CAP]
            send({"type": "collect-error", "nodeid": report.nodeid, "message": message})

    def pytest_collection_finish(session) -> None:
        verify()
        specs = [
            {
                "nodeid": item.nodeid,
                "rules": [r for m in item.iter_markers("rule") for r in m.args if isinstance(r, str)],
            }
            for item in session.items
        ]
        send({"type": "collected", "specs": specs})

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(item, call):
        report = yield
        verify()  # after the phase ran and its report was made: a few ms
        derived, said = outcome_of(call), report.outcome
        if said == "skipped" and derived == "failed" and hasattr(report, "wasxfail"):
            outcome = "skipped"  # an expected failure: pytest's skipping plugin says so
        else:
            outcome = max(derived, said if said in RANK else "failed", key=RANK.__getitem__)
        if said == "passed" and derived != "passed":
            raised = type(getattr(call.excinfo, "value", None)).__name__
            tampered(f"the report of {item.nodeid} ({call.when}) says passed; the spec raised {raised}")
        send(
            {
                "type": "report",
                "nodeid": item.nodeid,
                "when": call.when,
                "outcome": outcome,
                "duration": round(float(getattr(call, "duration", 0.0) or 0.0), 3),
            }
        )
        return report

    def pytest_runtest_logreport(report) -> None:
        if not report.failed:
            return
        try:
            message = str(report.longreprtext)[:MESSAGE_CAP]
        except Exception:  # a repr that cannot render: the outcome still counts
            message = "(the failure could not be rendered)"
        send({"type": "message", "nodeid": report.nodeid, "when": report.when, "message": message})

    def pytest_sessionfinish(session, exitstatus) -> None:
        verify()
        send({"type": "finish", "exitstatus": int(exitstatus)})

    return {
        f.__name__: f
        for f in (
            pytest_configure,
            pytest_load_initial_conftests,
            pytest_collectreport,
            pytest_collection_finish,
            pytest_runtest_makereport,
            pytest_runtest_logreport,
            pytest_sessionfinish,
        )
    }


globals().update(_hooks())
