"""Timeouts that stop learner code, Ctrl-C, and a run that ends in time with nothing left running.

- pytest-timeout's `timeout`: on the first expiry the spec fails naming the learner line that was
  running; if more learner code keeps the thread busy (a CPU loop in every task of a gather), it
  is interrupted again every REFIRE s until the spec ends. Code that cannot be interrupted (a C
  call that never returns) ends the run after STUCK_GRACE s, with one line.
- After the last spec, a learner thread still running (a non-daemon thread, a `def` endpoint
  still sleeping) is named in one line and the run ends within THREAD_GRACE s instead of waiting.
- END_GRACE s after the session's end, whatever still holds the process (a stuck finalizer), the
  run ends with its exit status.

PYTEST_DONT_REWRITE: registered through kata_tools.pytest_plugin's pytest_plugins.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kata_tools import probes
from kata_tools.plugin.failures import render
from kata_tools.plugin.shared import (
    END_GRACE,
    EXIT,
    MSG,
    REFIRE,
    REFIRES,
    RESULTS,
    STOPPED,
    STUCK_GRACE,
    THREAD_GRACE,
    is_spec,
    record,
    stop_child_processes,
    write_report,
)

if TYPE_CHECKING:  # pytest's class of test failures, public only as pytest.fail.Exception
    from _pytest.outcomes import Failed
else:
    Failed = pytest.fail.Exception


class TimedOut(Failed):
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


class interruptible:
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
    # Past the first interrupt, code that is not the learner's is stopped only when it waits for
    # something the learner holds (the event loop's select while a `def` endpoint sleeps in its
    # thread, a thread join), and seldom: once a second, from 2 s after the timeout on. Anywhere
    # else, an exception could leave asyncio or pytest half-way through their own bookkeeping.
    waiting_long = _waiting(frame) and now - timer.first_at >= 2.0 and now - timer.last_raise >= 1.0
    if timer.fired > 1 and not probes.frame_line(frame) and not waiting_long:
        return
    timer.last_raise = now
    failure = TimedOut(f"Timeout >{timer.timeout}s", pytrace=False)
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
            frames: list[tuple[str, int]] = []
            coro: object = task.get_coro()
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


def on_sigint(signum, frame):
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
        stop_child_processes()
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
        results = config.stash[RESULTS]
        if item.nodeid not in results or results[item.nodeid]["outcome"] == "passed":
            shown = render(item, MSG("timeout-at", timeout=timer.timeout, where=where))
            results[item.nodeid] = record(item, "failed", shown, 0.0)
        write_report(config, pytest.ExitCode.INTERRUPTED)
    finally:
        stop_child_processes()
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
    cancel_timer(item)
    return True


def cancel_timer(item: pytest.Item) -> None:
    global _TIMER
    timer = _TIMER
    if timer is None or timer.item is not item:
        return
    timer.done = True
    if timer.fired:
        item.stash[STOPPED] = True  # read by the teardown: leftovers of a stopped spec are its echo
    if not _STOPPING["since"]:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    if timer.watchdog is not None:
        timer.watchdog.cancel()
    _TIMER = None


def lingering() -> list[tuple[threading.Thread, str]]:
    """Threads that would keep the interpreter from exiting, with the learner line each runs:
    non-daemon threads, and busy workers of thread pools (Python joins those at exit)."""
    out = []
    frames = sys._current_frames()
    for t in threading.enumerate():
        if t is threading.current_thread() or not t.is_alive():
            continue
        if type(t).__name__ == "_ExecutorManagerThread":
            continue  # a process pool's: it ends with its workers at exit (stop_child_processes)
        pool_worker = t.name.startswith(("ThreadPoolExecutor", "asyncio_"))
        if t.daemon and not pool_worker:
            continue
        frame = frames.get(t.ident) if t.ident is not None else None  # None: not started
        if pool_worker and (frame is None or frame.f_code.co_name == "_worker"):
            continue  # idle: waiting for work, it ends at exit
        out.append((t, probes.frame_line(frame) if frame is not None else ""))
    return out


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run now if a learner's thread would keep the process alive (see the docstring)."""
    if EXIT not in config.stash:
        return
    deadline = time.monotonic() + THREAD_GRACE
    left = lingering()
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = lingering()
    if not left:
        return
    for t, where in left:
        sys.stderr.write(_thread_line(t, where) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    stop_child_processes()
    os._exit(config.stash[EXIT])


def pytest_keyboard_interrupt(excinfo) -> None:
    """Ctrl-C: one line, not a traceback (the specs that ran still show their results)."""
    session = _SESSION
    reporter = session.config.pluginmanager.get_plugin("terminalreporter") if session else None
    if session is None or reporter is None or isinstance(excinfo.value, pytest.Session.Interrupted):
        return  # "Interrupted: 1 error during collection" is pytest's, and says the right thing
    total = len(getattr(session, "items", []) or [])
    done = len(session.config.stash[RESULTS])

    def one_line():
        reporter.write_line(MSG("interrupted", done=done, total=total))

    reporter._report_keyboardinterrupt = one_line


_SESSION: pytest.Session | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _SESSION
    _SESSION = session


def end_now(status: int) -> None:
    for t, where in lingering():
        sys.stderr.write(_thread_line(t, where) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    stop_child_processes()
    os._exit(status)


def _thread_line(t: threading.Thread, where: str) -> str:
    if where:
        return MSG("thread-left", name=t.name, where=where)
    return MSG("thread-left-nowhere", name=t.name)


def end_later(status: int) -> None:
    """The last safety net, started when the specs are done (see the module's docstring)."""
    end = threading.Timer(END_GRACE, end_now, (status,))
    end.daemon = True
    end.start()


def fired_for(item: pytest.Item) -> bool:
    """Whether this spec's timeout fired (read by the teardown, when its timer may be gone)."""
    return item.stash.get(STOPPED, False) or (
        _TIMER is not None and _TIMER.item is item and bool(_TIMER.fired)
    )
