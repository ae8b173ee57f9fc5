"""Two cuts of what is not the learner's specs in a pytest run (a pytest plugin), both measured.

1. After collection, the objects of every imported module (FastAPI, SQLAlchemy, pydantic, pytest:
   about 94,000) are frozen out of the garbage collector (gc.freeze). The kata plugin collects
   garbage twice per spec, so what a spec dropped warns inside that spec; each full collection
   walked all of them: 45 ms quiet, 230 ms on a loaded machine, up to 0.5 s per spec. Frozen,
   it walks only what the specs made (0.1 ms). The learner's objects are all made later, so
   nothing they leave behind escapes the check.

2. The process ends as soon as the report is written.
Measured (benchmarks/FEEDBACK.md, --profile): after the last line of the report, a database kata's
process spent 0.3 s quiet and 1-2 s on a loaded machine tearing down the interpreter: joining the
default executor's idle threads, running atexit handlers, freeing every module of FastAPI,
SQLAlchemy and pydantic. None of it is the learner's specs. So, in the last `pytest_unconfigure`,
stdout and stderr are flushed and the process ends with pytest's exit status (os._exit).

Only when it is safe: pytest runs as the process's main program (`python -m pytest` or the
`pytest` script; never inside `pytest.main()` called by another program, pytester, or xdist), no
coverage measurement is running, and KATA_FAST_EXIT is not "0" (KATA_GC_FREEZE=0 turns off 1). The embedded PostgreSQL is
stopped by its reaper either way (kata_tools.pg_reaper watches this process).
"""

from __future__ import annotations

import gc
import os
import sys

import pytest

from kata_tools.plugin.shared import stop_child_processes

_STATUS = pytest.StashKey[int]()


def _safe(config: pytest.Config) -> bool:
    if os.environ.get("KATA_FAST_EXIT", "1") == "0" or "coverage" in sys.modules:
        return False
    if hasattr(config, "workerinput") or os.environ.get("PYTEST_XDIST_WORKER"):
        return False
    main = sys.modules.get("__main__")
    main_file = os.path.basename(getattr(main, "__file__", "") or "")
    # `python -m pytest` runs pytest/__main__.py; the console script is named pytest (pytest.exe
    # and pytest-script.py on Windows) and its __main__ module has no package.
    return (main_file == "__main__.py" and getattr(main, "__package__", None) == "pytest") or (
        main_file.split(".")[0] in ("pytest", "py.test", "pytest-script")
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get("KATA_GC_FREEZE", "1") != "0":
        gc.collect()  # what import left as garbage goes first, never frozen
        gc.freeze()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_STATUS] = int(exitstatus)


@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config: pytest.Config):
    # A wrapper: every plugin's own pytest_unconfigure (the kata plugin's report of a learner's
    # thread left running, its progress file) has run when the code after the yield does.
    yield
    # Only after a run that ended as runs do (specs passed, or some failed): an interrupted run,
    # an internal or usage error, or "no tests ran" goes through pytest's own ending, which is
    # where its message is printed.
    if config.stash.get(_STATUS, None) not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return
    if not _safe(config):
        return
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    stop_child_processes()  # a learner's process pool: orphaned, it would hold stdout open
    os._exit(config.stash[_STATUS])
