"""Cuts of what is not the learner's specs in a pytest run (a pytest plugin), each measured.

1. While the spec files are collected (their imports: FastAPI, SQLAlchemy, pydantic), the
   garbage collector is off: those imports make some 100,000 objects and no garbage worth a
   collection, and the collections they set off cost 0.05-0.1 s of every database kata's run.
   It is back on, after the freeze of 2, before the first spec.

   pydantic looks for its plugins among every installed package's entry points when it builds
   its first model (FastAPI's own, on import): 60-80 ms, and the course uses none. So
   PYDANTIC_DISABLE_PLUGINS is set to "__all__" unless it is set already (pydantic's own switch).

   httpx imports its command line (httpx._main: click, rich, pygments) whenever those are
   installed, as they are for `kata`: 60-80 ms, and no spec runs it. Until something uses it,
   httpx._main is a stand-in that imports the real one on first use (`_httpx_cli_on_first_use`).

2. After collection, the objects of every imported module (FastAPI, SQLAlchemy, pydantic, pytest:
   about 94,000) are frozen out of the garbage collector (gc.freeze). The kata plugin collects
   garbage twice per spec, so what a spec dropped warns inside that spec; each full collection
   walked all of them: 45 ms quiet, 230 ms on a loaded machine, up to 0.5 s per spec. Frozen,
   it walks only what the specs made (0.1 ms). The learner's objects are all made later, so
   nothing they leave behind escapes the check.

3. The process ends as soon as the report is written.
Measured (benchmarks/FEEDBACK.md, --profile): after the last line of the report, a database kata's
process spent 0.3 s quiet and 1-2 s on a loaded machine tearing down the interpreter: joining the
default executor's idle threads, running atexit handlers, freeing every module of FastAPI,
SQLAlchemy and pydantic. None of it is the learner's specs. So, in the last `pytest_unconfigure`,
stdout and stderr are flushed and the process ends with pytest's exit status (os._exit).

Only when it is safe: pytest runs as the process's main program (`python -m pytest` or the
`pytest` script; never inside `pytest.main()` called by another program, pytester, or xdist), no
coverage measurement is running, and KATA_FAST_EXIT is not "0" (KATA_GC_FREEZE=0 turns off the
collector's part of 1, and 2). The embedded PostgreSQL is stopped by its reaper either way
(kata_tools.pg_reaper watches this process).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types

import pytest

from kata_tools.plugin.shared import stop_child_processes

_STATUS = pytest.StashKey[int]()
_GC_PAUSED = pytest.StashKey[bool]()

# Read by pydantic when it first builds a model, after this plugin is imported (conftest.py).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _httpx_cli_on_first_use() -> None:
    """Put a stand-in for httpx._main in sys.modules, unless httpx is imported already."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def real() -> types.ModuleType:
        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        return importlib.import_module("httpx._main")

    def main(*args, **kwargs):  # httpx.main, the `httpx` command
        return real().main(*args, **kwargs)

    def rest(name: str):
        if name.startswith("__"):  # the import system asks for __path__ and the like: none here
            raise AttributeError(name)
        return getattr(real(), name)

    stand_in.main = main  # type: ignore[attr-defined]
    stand_in.__getattr__ = rest  # type: ignore[method-assign]
    sys.modules["httpx._main"] = stand_in


_httpx_cli_on_first_use()


def _gc_cuts() -> bool:
    return os.environ.get("KATA_GC_FREEZE", "1") != "0"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if _gc_cuts() and gc.isenabled():  # a caller that turned it off keeps it off
        gc.disable()
        config.stash[_GC_PAUSED] = True


def _resume_gc(config: pytest.Config) -> None:
    if config.stash.get(_GC_PAUSED, False):
        config.stash[_GC_PAUSED] = False
        gc.enable()


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
    if _gc_cuts():
        # No gc.collect() first: a full collection of all that costs 50-90 ms, and the little
        # garbage the imports left is only memory (frozen, it is never collected). Every object of
        # a learner's code is made after this line, so the leftover checks still see them all.
        gc.freeze()
    _resume_gc(session.config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _resume_gc(session.config)  # a collection that never finished (Ctrl-C, a usage error)
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
