"""Structural probes for concurrency: what ran at once, on which thread, and what blocked the loop.

The specs check concurrency with these instead of stopwatches, so they stay exact on a busy
2-core machine: counting calls in flight stayed exact under load where timings did not.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


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
        return all(prev[1] <= nxt[0] for prev, nxt in zip(ordered, ordered[1:]))


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
