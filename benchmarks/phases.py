"""A pytest plugin for benchmarks/feedback.py --profile: when each phase of a run ended.

Loaded with `-p phases` (benchmarks/ on PYTHONPATH); writes JSON to $KATA_PHASES: seconds since
$KATA_T0 (the parent's time.time() just before it started the process).
"""

from __future__ import annotations

import atexit
import json
import os
import time

import pytest

_T0 = float(os.environ.get("KATA_T0", time.time()))
_MARKS: dict[str, float] = {}


def _mark(name: str) -> None:
    _MARKS.setdefault(name, round(time.time() - _T0, 3))


_mark("plugins imported")  # interpreter start + pytest + the plugins' imports


class _First:
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session):
        _mark("collected")  # the database plugin waits for its server after this


def pytest_configure(config):
    _mark("configured")
    config.pluginmanager.register(_First(), "phases-first")


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    _mark("database ready")


def pytest_runtest_setup(item):
    _mark("first spec starts")


def pytest_runtest_teardown(item, nextitem):
    if nextitem is None:
        _MARKS["last spec ends"] = round(time.time() - _T0, 3)


def pytest_sessionfinish(session):
    _mark("session finished")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    _mark("unconfigured")
    _write()  # kata_tools.fast_feedback may end the process before atexit


@atexit.register
def _at_exit() -> None:
    _mark("atexit")
    _write()


def _write() -> None:
    path = os.environ.get("KATA_PHASES")
    if path:
        with open(path, "w") as f:
            json.dump(_MARKS, f)
