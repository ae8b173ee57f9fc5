"""The grading child's reporter: what pytest itself saw, streamed to the parent through a pipe.

Loaded only in a grading child (`-p kata_tools.grading.probe`, with KATA_GRADE_FD naming the
write end of a pipe the parent holds). Each message is one JSON line, written the moment pytest
knows it, so a message already sent cannot be rewritten later by learner code (an exit handler,
a patched recorder); a run killed for its time limit still leaves the results so far.

    {"type": "collected", "specs": [{"nodeid": ..., "rules": [...]}]}   after collection
    {"type": "collect-error", "nodeid": ..., "message": ...}
    {"type": "report", "nodeid": ..., "when": "setup|call|teardown", "outcome": ..., "duration": ...}
    {"type": "message", "nodeid": ..., "when": ..., "message": ...}   the failure text shown
    {"type": "finish", "exitstatus": 0}

A "report" is taken in the innermost wrapper of pytest_runtest_makereport: the outcome pytest's
own runner gave the phase, before any other plugin (or code patched into one) sees the report
object. JUnit is written from the report object as later hooks leave it, so a change made to it
on the way shows as a disagreement between the two.

The parent cross-checks these against pytest's own JUnit file and the process exit code
(kata_tools/grading/verdict.py); neither alone decides a grade.
"""

from __future__ import annotations

import json
import os

import pytest

MESSAGE_CAP = 4000  # characters of a failure message sent; the parent caps again

_fd: int | None = None


def _send(obj: dict) -> None:
    if _fd is None:
        return
    data = (json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii")
    try:
        while data:
            data = data[os.write(_fd, data) :]
    except OSError:
        pass  # the parent went away: nothing left to tell


def pytest_configure(config) -> None:
    global _fd
    value = os.environ.pop("KATA_GRADE_FD", "")  # gone before any learner code runs
    _fd = int(value) if value.isdigit() else None
    if _fd is not None:
        try:  # servers the specs start (the database's reaper) must not keep the pipe open
            os.set_inheritable(_fd, False)
        except OSError:
            _fd = None


def pytest_collectreport(report) -> None:
    if report.failed:
        _send(
            {
                "type": "collect-error",
                "nodeid": report.nodeid,
                "message": str(report.longreprtext)[:MESSAGE_CAP],
            }
        )


def pytest_collection_finish(session) -> None:
    specs = [
        {
            "nodeid": item.nodeid,
            "rules": [r for m in item.iter_markers("rule") for r in m.args if isinstance(r, str)],
        }
        for item in session.items
    ]
    _send({"type": "collected", "specs": specs})


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item, call):
    report = yield
    _send(
        {
            "type": "report",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "duration": round(float(getattr(report, "duration", 0.0) or 0.0), 3),
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
    _send({"type": "message", "nodeid": report.nodeid, "when": report.when, "message": message})


def pytest_sessionfinish(session, exitstatus) -> None:
    _send({"type": "finish", "exitstatus": int(exitstatus)})
