"""Structural probes for concurrency: what ran at once, on which thread, and what blocked the loop.

The specs check concurrency with these instead of stopwatches, so they stay exact on a busy
2-core machine: counting calls in flight stayed exact under load where timings did not.

- `InFlight`: calls running at once, their threads and order.  `BlockingSpy`: a second signal.
- `Heartbeat`: ticks of the event loop while code runs (a blocked loop does not tick).
- `Leftovers` / `never_awaited()`: what learner code left behind without awaiting it.

Never awaited (shared by every kata; the plugin also runs it around every spec):

    from kata_tools.probes import never_awaited

    with never_awaited() as seen:          # a plain `with`, in sync or async code
        result = await kata.add_comment(db, 1, "x")
    if seen:                               # seen.names: ["AsyncSession.commit"], seen.where
        pytest.fail(seen.message(), pytrace=False)   # one line 1 + line 2, both languages

At the end of the block it collects garbage, so a coroutine dropped without `await` (or held
only by an error's traceback) warns now, inside the block, where it is recorded instead of
erroring a later spec. `seen.found` lists `Unawaited(name, where)`: the coroutine's qualified
name and the learner's file:line that created it (coroutine origin tracking is on in the block).
`seen.unretrieved` lists asyncio's "Future/Task exception was never retrieved" (an
`asyncio.gather(...)` or a task nobody awaited); `seen.resources` the ResourceWarnings (an
unclosed connection or file). Without any spec doing this, the kata plugin still does it around
every spec and fails that spec (never the next one) with the same one message.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import logging
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def loop_running_here() -> bool:
    """True when the calling thread is running an event loop right now."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class InFlight:
    """Counts calls in flight at once, and remembers threads, order and timing of each call.

    Use it around the body of a handler:  `with probe.track(request_id): ...`
    (a plain `with` works in sync and async code alike).
    """

    current: int = 0
    peak: int = 0
    started: list = field(default_factory=list)  # call keys, in start order
    finished: list = field(default_factory=list)  # call keys, in finish order
    threads: set = field(default_factory=set)  # thread idents the calls ran on
    on_loop: list = field(default_factory=list)  # per call: was an event loop running there?
    spans: dict = field(default_factory=dict)  # key -> (start, end), time.perf_counter()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def track(self, key=None):
        return _Tracked(self, key)

    @property
    def calls(self) -> int:
        return len(self.started)

    def ran_one_at_a_time(self) -> bool:
        """Every call started only after the previous one had finished."""
        ordered = sorted(self.spans.values())
        return all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(ordered))


class _Tracked:
    def __init__(self, probe: InFlight, key):
        self.probe, self.key = probe, key

    def __enter__(self):
        p = self.probe
        with p._lock:
            p.current += 1
            p.peak = max(p.peak, p.current)
            p.started.append(self.key)
            p.threads.add(threading.get_ident())
            p.on_loop.append(loop_running_here())
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        p = self.probe
        with p._lock:
            p.current -= 1
            p.finished.append(self.key)
            p.spans[self.key if self.key is not None else len(p.spans)] = (
                self.t0,
                time.perf_counter(),
            )
        return False


@dataclass
class BlockingSpy:
    """Wraps a blocking function; records each call and whether it ran on an event loop thread."""

    name: str
    calls: int = 0
    calls_on_loop: int = 0

    def wrap(self, func: Callable) -> Callable:
        @functools.wraps(func)
        def spy(*args, **kwargs):
            self.calls += 1
            if loop_running_here():
                # The one fact that matters: this blocking call stalled an event loop.
                self.calls_on_loop += 1
            return func(*args, **kwargs)

        return spy


class Heartbeat:
    """A task that ticks every `interval` seconds and records the longest gap between ticks.

    While the loop is free, gaps stay near the interval (at most 0.02 s measured with the machine
    loaded, 0.09 s seen with it overloaded); a blocking call of T seconds shows up as a gap of
    about T. `ticks` counts the beats: a call during which it did not grow at all held the loop
    for all of its duration, which no load can fake.
    """

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.max_gap = 0.0
        self.ticks = 0
        self._task: asyncio.Task | None = None

    def _tick(self):
        now = time.perf_counter()
        self.max_gap = max(self.max_gap, now - self._last)
        self._last = now

    async def _beat(self):
        while True:
            await asyncio.sleep(self.interval)
            self.ticks += 1
            self._tick()

    async def __aenter__(self):
        self._last = time.perf_counter()
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)  # let the first beat start before the code under test runs
        return self

    async def __aexit__(self, *exc):
        self._tick()  # a block at the very end would otherwise never be seen by a next beat
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return False


# --- what learner code left behind -------------------------------------------------------------

_NEVER_AWAITED = re.compile(r"coroutine '([^']+)' was never awaited")
_ORIGIN_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_UNRETRIEVED = ("exception was never retrieved", "Task was destroyed but it is pending")


@dataclass(frozen=True)
class Unawaited:
    """A coroutine created and never awaited: its qualified name and the learner line that made it."""

    name: str
    where: str = ""


def learner_line(frames) -> str:
    """file:line of the innermost frame in a learner file (a kata folder, not a spec, not a library).

    `frames`: (filename, lineno) pairs, outermost first."""
    from kata_tools.catalog import kata_of
    from kata_tools.loader import display

    found = ""
    for filename, lineno in frames:
        path = Path(filename)
        if kata_of(path) and not path.name.startswith(("test_", "conftest")):
            found = f"{display(path)}:{lineno}"
    return found


def frame_line(frame) -> str:
    """learner_line of a running frame and its callers (a thread's or a signal handler's frame)."""
    stack = []
    while frame is not None:
        stack.append((frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return learner_line(reversed(stack))


class _AsyncioLogFilter(logging.Filter):
    def __init__(self, sink: list):
        super().__init__()
        self.sink = sink

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let logging deal with it
            return True
        if any(marker in text for marker in _UNRETRIEVED):
            self.sink.append(text.splitlines()[0])
            return False  # recorded here, not dumped (with its traceback) into the output
        return True


class Leftovers:
    """Records, while active, what code left behind: coroutines never awaited, futures and tasks
    whose exception nobody retrieved, ResourceWarnings (an unclosed connection), and other
    exceptions raised while an object was freed. `check()` collects garbage first.

    Start and stop it on one thread, in nested order (it is a plain `with` context manager)."""

    def __init__(self, origin_depth: int = 2):
        self.found: list[Unawaited] = []
        self.unretrieved: list[str] = []
        self.resources: list[str] = []
        self.unraisable: list[str] = []
        self._origin_depth = origin_depth
        self._active = False

    # -- recording
    def _showwarning(self, message, category, filename, lineno, file=None, line=None):
        text = str(message)
        match = _NEVER_AWAITED.search(text)
        if match:
            frames = [(f, int(n)) for f, n in _ORIGIN_FRAME.findall(text)]
            self.found.append(Unawaited(match.group(1), learner_line(frames)))
            return
        if issubclass(category, ResourceWarning):
            self.resources.append(text.splitlines()[0] if text else category.__name__)
            return
        self._previous_showwarning(message, category, filename, lineno, file, line)

    def _unraisablehook(self, unraisable):
        exc = unraisable.exc_value
        text = str(exc) if exc is not None else ""
        match = _NEVER_AWAITED.search(text)
        if match:
            self.found.append(Unawaited(match.group(1), ""))
        elif isinstance(exc, ResourceWarning):
            self.resources.append(text.splitlines()[0] if text else "ResourceWarning")
        elif exc is not None:
            self.unraisable.append(f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}")
        else:
            self._previous_unraisablehook(unraisable)

    def __enter__(self):
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.filterwarnings("always", message=r"coroutine .* was never awaited")
        warnings.filterwarnings("always", category=ResourceWarning)
        self._previous_showwarning = warnings.showwarning
        warnings.showwarning = self._showwarning
        self._previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = self._unraisablehook
        self._previous_depth = sys.get_coroutine_origin_tracking_depth()
        sys.set_coroutine_origin_tracking_depth(max(self._origin_depth, self._previous_depth))
        self._log_filter = _AsyncioLogFilter(self.unretrieved)
        logging.getLogger("asyncio").addFilter(self._log_filter)
        self._active = True
        return self

    def check(self) -> Leftovers:
        """Collect garbage now, so what was dropped warns here, while it is recorded."""
        if self._active:
            gc.collect()
        return self

    def __exit__(self, *exc):
        try:
            self.check()
        finally:
            self._active = False
            logging.getLogger("asyncio").removeFilter(self._log_filter)
            sys.set_coroutine_origin_tracking_depth(self._previous_depth)
            sys.unraisablehook = self._previous_unraisablehook
            warnings.showwarning = self._previous_showwarning
            self._warnings.__exit__(None, None, None)
        return False

    # -- reading
    def __bool__(self) -> bool:
        return bool(self.found or self.unretrieved or self.resources or self.unraisable)

    @property
    def names(self) -> list[str]:
        """Qualified names of the coroutines never awaited, each once, in the order seen."""
        return list(dict.fromkeys(u.name for u in self.found))

    @property
    def where(self) -> str:
        """The learner line that created the first coroutine never awaited ("" if unknown)."""
        return next((u.where for u in self.found if u.where), "")

    def take(self) -> Leftovers:
        """A copy of what was recorded so far, and forget it here (for per-spec reports)."""
        copy = Leftovers(self._origin_depth)
        copy.found, copy.unretrieved = self.found[:], self.unretrieved[:]
        copy.resources, copy.unraisable = self.resources[:], self.unraisable[:]
        self.found.clear()
        self.unretrieved.clear()
        self.resources.clear()
        self.unraisable.clear()
        return copy

    def message(self, what: str | None = None) -> str:
        """One teaching message (two lines, the current language) for what was left behind."""
        from kata_tools import i18n

        msg = i18n.tool("plugin")
        at = self.where
        if self.found:
            names = ", ".join(self.names)
            subject = what or names
            if at:
                return msg("never-awaited-at", subject=subject, names=names, where=at)
            return msg("never-awaited", subject=subject, names=names)
        if self.unretrieved:
            first = self.unretrieved[0]
            if "_GatheringFuture" in first or "gather" in first.lower():
                return msg("gather-never-awaited")
            if "destroyed but it is pending" in first:
                return msg("task-destroyed-pending", count=len(self.unretrieved))
            return msg("exception-never-retrieved", first=first, count=len(self.unretrieved))
        if self.resources:
            return msg("resource-left-open", first=self.resources[0], count=len(self.resources))
        return msg("error-when-freed", first=self.unraisable[0], count=len(self.unraisable))


def unawaited_in(caught) -> list[Unawaited]:
    """The coroutines never awaited among warnings recorded by `warnings.catch_warnings(record=True)`."""
    out = []
    for w in caught:
        text = str(w.message)
        match = _NEVER_AWAITED.search(text)
        if match:
            frames = [(f, int(n)) for f, n in _ORIGIN_FRAME.findall(text)]
            out.append(Unawaited(match.group(1), learner_line(frames)))
    return out


def never_awaited(origin_depth: int = 2) -> Leftovers:
    """`with never_awaited() as seen:` records what the block left behind (see the module doc)."""
    return Leftovers(origin_depth)
