"""Specs of kata 02: the thread pool (rules TP1-TP5). Do not edit: edit app.py.

Every request goes through your FastAPI app inside this test's event loop (httpx.ASGITransport),
with the app's lifespan running around it as a real server runs it. The specs swap legacy_report
and cached_report for stand-ins that record how many calls were in flight at once and on which
thread. A stand-in holds each call until the expected number are in, or the pool is full (or,
for a wrong solution, nobody new has arrived for a while), so the counts are exact on a busy
machine: no stopwatch decides. Failure messages: messages.toml.
"""

import asyncio
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio.to_thread
import httpx
import pytest

from kata_tools.i18n import catalog
from kata_tools.probes import Heartbeat, InFlight, loop_running_here

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

DEFAULT_LIMIT = 40  # anyio's default thread limiter: 40 tokens per event loop
# A held call is let go once no new call has arrived for this long. Only a wrong solution ever
# waits for it: a working app opens the gate by reaching the target or by filling the pool.
# Measured with the machine loaded: calls on worker threads arrived at most 15 ms apart;
# 500 coroutines on the loop up to 0.6 s apart (garbage collection), hence the longer wait.
QUIET_THREADS = 0.5
QUIET_LOOP = 3.0


@pytest.fixture
def kata(kata_module):
    return kata_module("app.py")


# --- helpers ------------------------------------------------------------------------------------


@dataclass
class Probe(InFlight):
    """InFlight that also keeps the thread objects: an ident is reused once its thread ends."""

    workers: set = field(default_factory=set)

    def track(self, key=None):
        self.workers.add(threading.current_thread())
        return super().track(key)


class Gate:
    """Holds calls until `target` are in flight at once, or until no new call arrived for `quiet` s.

    Once open it stays open. A server that can run N calls at once then shows exactly N in
    flight however slow the machine is. Works for calls on worker threads (`hold`) and on any
    event loop (`hold_async`). A blocking call on the loop's own thread is never held: nothing
    else can run while it runs, so holding it would only stall the spec.
    """

    def __init__(self, probe: Probe, target: int, quiet: float):
        self.probe, self.target, self.quiet = probe, target, quiet
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self._last_arrival = None
        self._waiters = []  # (loop, future) of calls held on an event loop
        self._watcher = threading.Thread(target=self._watch, name="kata gate", daemon=True)

    def __enter__(self):
        self._watcher.start()
        return self

    def __exit__(self, *exc):
        self.open()
        self._watcher.join()
        return False

    def _arrived(self):
        with self._lock:
            self._last_arrival = time.perf_counter()
        if self.probe.current >= self.target:
            self.open()

    def _watch(self):
        while not self.opened.wait(0.005):
            with self._lock:
                last = self._last_arrival
            if last is not None and time.perf_counter() - last >= self.quiet:
                self.open()

    def open(self):
        with self._lock:
            self.opened.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_release, future)

    def hold(self):
        self._arrived()
        if not loop_running_here():
            self.opened.wait(5)

    async def hold_async(self):
        self._arrived()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self.opened.is_set():
                return
            self._waiters.append((loop, future))
        await future


def _release(future):
    if not future.done():
        future.set_result(None)


def legacy_stand_in(probe: Probe, gate: Gate | None = None):
    """Replaces legacy_report: a blocking call that records itself and holds its thread."""

    def legacy_report(report_id: int) -> dict:
        with probe.track(report_id):
            if gate is not None:
                gate.hold()
        return {"report": report_id, "source": "stand-in"}

    return legacy_report


def cached_stand_in(probe: Probe, gate: Gate):
    """Replaces cached_report: an async call that records itself and awaits the gate."""

    async def cached_report(report_id: int) -> dict:
        with probe.track(report_id):
            await gate.hold_async()
        return {"report": report_id, "source": "stand-in"}

    return cached_report


@asynccontextmanager
async def serve(app):
    """The app's lifespan around an httpx client, as a server does (ASGITransport does not)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def get_all(client: httpx.AsyncClient, paths: list[str]) -> list[httpx.Response]:
    """GET every path at once; wait for all of them before raising the first error, if any."""
    responses = await asyncio.gather(*(client.get(p) for p in paths), return_exceptions=True)
    for response in responses:
        if isinstance(response, BaseException):
            raise response
    return responses


def json_or_none(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def bad_bodies(responses) -> list:
    """(status, text) of each response that is not 200 with the stand-in's answer for its id."""
    return [
        (r.status_code, r.text[:80])
        for i, r in enumerate(responses)
        if r.status_code != 200 or json_or_none(r) != {"report": i, "source": "stand-in"}
    ]


async def send_held(
    kata,
    monkeypatch,
    path: str,
    n: int,
    target: int,
    thread_limit=None,
    app=None,
    on_full=None,
    after_start=None,
):
    """n requests at once to GET {path}/{i}, through the app's lifespan; the stand-in of the
    endpoint's call (legacy_report for /reports, cached_report for /cached) holds each call at a
    gate. Returns the probe of those calls. `on_full(client)` is awaited once FastAPI's pool is
    full, before the held calls are let go (a spec reads the server's state under load there)."""
    blocking = path == "/reports"
    probe = Probe()
    with Gate(probe, target, QUIET_THREADS if blocking else QUIET_LOOP) as gate:
        if blocking:
            monkeypatch.setattr(kata, "legacy_report", legacy_stand_in(probe, gate))
        else:
            monkeypatch.setattr(kata, "cached_report", cached_stand_in(probe, gate))
        app = app if app is not None else kata.create_app(thread_limit=thread_limit)
        async with serve(app) as client:
            if after_start is not None:
                after_start()
            when_full = (lambda: on_full(client)) if on_full else None
            async with opened_once_the_pool_is_full(gate, probe, n, when_full):
                responses = await get_all(client, [f"{path}/{i}" for i in range(n)])
    call = "legacy_report" if blocking else "await cached_report"
    assert not bad_bodies(responses), MSG("bad-body", path=path, answers=bad_bodies(responses)[:2], call=call)
    return probe


@asynccontextmanager
async def opened_once_the_pool_is_full(gate: Gate, probe: Probe, n: int, on_full=None):
    """Opens the gate as soon as FastAPI's pool is provably full: every token of the default
    limiter held by a call inside the stand-in, and every other request queued for a token.

    Only a shortcut (no quiet wait when the pool works as it should): if the app does not use
    the default limiter, the gate's own rules open it.
    """
    limiter = anyio.to_thread.current_default_thread_limiter()

    async def watch():
        while not gate.opened.is_set():
            stats = limiter.statistics()
            full = stats.borrowed_tokens == stats.total_tokens == probe.current
            if full and probe.current + stats.tasks_waiting == n:
                if on_full is not None:
                    await on_full()
                gate.open()
                return
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def read_limit(client: httpx.AsyncClient) -> object:
    try:
        response = await client.get("/thread-limit")
    except RuntimeError as e:
        if isinstance(e, NotImplementedError):
            raise
        # anyio's NoEventLoopError: no event loop runs in the calling thread
        pytest.fail(MSG("limit-no-loop", error=type(e).__name__), pytrace=False)
    assert response.status_code == 200, MSG(
        "limit-status", status=response.status_code, text=response.text[:80]
    )
    body = json_or_none(response)
    return body.get("limit") if isinstance(body, dict) else body


def on_the_loop(probe: Probe) -> bool:
    """legacy_report ran on the event loop's thread (an async def endpoint calling it)."""
    return any(probe.on_loop)


def fail_if_on_the_loop(probe: Probe, n: int) -> None:
    if on_the_loop(probe):
        pytest.fail(MSG("on-the-loop", n=n, peak=probe.peak), pytrace=False)


# --- TP1: def endpoints run in the thread pool ---------------------------------------------------


@pytest.mark.rule("TP1")
async def test_a_def_endpoint_runs_its_blocking_call_on_a_worker_thread(kata, monkeypatch):
    """A def endpoint runs on a worker thread of the pool, not on the event loop's thread."""
    probe = Probe()
    monkeypatch.setattr(kata, "legacy_report", legacy_stand_in(probe))
    async with serve(kata.create_app()) as client:
        response = await client.get("/reports/7")

    answer = json_or_none(response)
    assert response.status_code == 200 and answer == {"report": 7, "source": "stand-in"}, MSG(
        "tp1-answer", status=response.status_code, text=response.text[:80]
    )
    loop_thread = threading.get_ident()
    assert probe.calls == 1 and loop_thread not in probe.threads and not any(probe.on_loop), MSG(
        "tp1-on-loop"
    )


@pytest.mark.rule("TP1")
async def test_ten_blocking_requests_to_a_def_endpoint_run_at_once(kata, monkeypatch):
    """Ten requests to a blocking def endpoint run at the same time, each on its own thread."""
    probe = await send_held(kata, monkeypatch, "/reports", n=10, target=10)

    fail_if_on_the_loop(probe, 10)
    assert probe.peak == 10, MSG("tp1-capped", peak=probe.peak, threads=len(probe.threads), n=10)


@pytest.mark.rule("TP1")
async def test_the_loop_keeps_running_while_def_endpoints_block(kata, monkeypatch):
    """While two def requests each block for 0.2 s, a heartbeat on the loop keeps ticking."""
    heart = Heartbeat(interval=0.01)
    ticks_during = []  # per blocking call: how often the heartbeat ticked while it blocked

    def legacy_report(report_id: int) -> dict:
        before = heart.ticks
        time.sleep(0.2)
        ticks_during.append(heart.ticks - before)
        return {"report": report_id, "source": "stand-in"}

    monkeypatch.setattr(kata, "legacy_report", legacy_report)
    async with serve(kata.create_app()) as client, heart:
        await get_all(client, [f"/reports/{i}" for i in range(2)])

    # Exact when blocked: the heartbeat cannot tick while the loop's thread is inside the call.
    # When free it ticks every 10 ms, about 20 times per call (a stopwatch limit on the longest
    # gap was not safe here: 0.09 s gaps with the loop free on a heavily loaded machine).
    frozen = ticks_during.count(0)
    assert len(ticks_during) == 2 and not frozen, MSG("tp1-frozen", frozen=frozen, gap=heart.max_gap)


# --- TP2: 40 threads, request 41 waits ------------------------------------------------------------


@pytest.mark.rule("TP2")
async def test_fifty_blocking_requests_run_forty_at_once_and_the_rest_wait(kata, monkeypatch):
    """With the default limit, 50 blocking requests run 40 at a time: request 41 waits."""
    probe = await send_held(kata, monkeypatch, "/reports", n=50, target=DEFAULT_LIMIT + 1)

    assert probe.calls == 50, MSG("tp2-calls", calls=probe.calls)
    assert probe.peak <= DEFAULT_LIMIT, MSG("tp2-too-many", peak=probe.peak)
    fail_if_on_the_loop(probe, 50)
    assert probe.peak == DEFAULT_LIMIT, MSG("tp2-capped", peak=probe.peak)


# --- TP3: the limit, read and changed at run time -------------------------------------------------


@pytest.mark.rule("TP3")
async def test_the_thread_limit_reads_forty_by_default(kata):
    """GET /thread-limit reports the running server's limit: 40 by default."""
    async with serve(kata.create_app()) as client:
        limit = await read_limit(client)

    assert limit == DEFAULT_LIMIT, MSG("tp3-default", limit=limit)


@pytest.mark.rule("TP3")
async def test_the_thread_limit_reads_what_create_app_was_given(kata):
    """create_app(thread_limit=7) serves with a limit of 7, and GET /thread-limit says so."""
    async with serve(kata.create_app(thread_limit=7)) as client:
        limit = await read_limit(client)

    assert limit == 7, MSG("tp3-given", limit=limit)


@pytest.mark.rule("TP3")
async def test_the_thread_limit_reads_the_value_set_at_run_time_even_under_load(kata, monkeypatch):
    """GET /thread-limit reads the live limit: after it is changed at run time, and while every
    thread of the pool is busy (an idle server, or the value create_app was given, can hide a
    wrong reading)."""
    # This test runs in the serving loop (ASGITransport), so it can change the server's limiter.
    limiter = anyio.to_thread.current_default_thread_limiter()
    async with serve(kata.create_app()) as client:
        limiter.total_tokens = 13
        idle = await read_limit(client)
    assert idle == 13, MSG("tp3-runtime", limit=idle, set=13)

    readings = []

    async def read_while_full(client):
        readings.append(await read_limit(client))

    def change_the_limit():  # after the app's start-up, as an admin would at run time
        anyio.to_thread.current_default_thread_limiter().total_tokens = 17

    probe = await send_held(
        kata,
        monkeypatch,
        "/reports",
        n=25,
        target=26,
        on_full=read_while_full,
        after_start=change_the_limit,
    )
    fail_if_on_the_loop(probe, 25)
    assert readings, MSG("tp3-never-full", peak=probe.peak, set=17)
    assert readings[0] == 17, MSG("tp3-under-load", limit=readings[0], set=17, busy=probe.peak)


@pytest.mark.rule("TP3")
async def test_a_thread_limit_of_five_runs_five_blocking_requests_at_once(kata, monkeypatch):
    """With create_app(thread_limit=5), 20 blocking requests run at most 5 at a time."""
    probe = await send_held(kata, monkeypatch, "/reports", n=20, target=6, thread_limit=5)

    fail_if_on_the_loop(probe, 20)
    assert probe.peak == 5, MSG("tp3-five", peak=probe.peak)


@pytest.mark.rule("TP3")
async def test_the_thread_limit_holds_on_the_loop_that_serves_the_app(kata, monkeypatch):
    """An app built where no loop runs still gets its limit: it is set when the server starts."""
    # Built on a thread with no running event loop, as `app = create_app()` at the top of a
    # module is under gunicorn or `uvicorn.run(app)`; then served by this test's loop.
    try:
        app = await asyncio.to_thread(kata.create_app, thread_limit=5)
    except RuntimeError as e:
        if isinstance(e, NotImplementedError):
            raise
        # anyio's NoEventLoopError: no event loop runs in the calling thread
        pytest.fail(MSG("tp3-no-loop-at-build", error=type(e).__name__), pytrace=False)
    probe = await send_held(kata, monkeypatch, "/reports", n=12, target=6, app=app)

    fail_if_on_the_loop(probe, 12)
    assert probe.peak == 5, MSG("tp3-built-early", peak=probe.peak)


# --- TP4: async def endpoints run on the loop -----------------------------------------------------


@pytest.mark.rule("TP4")
async def test_an_async_endpoint_runs_on_the_event_loop_thread(kata, monkeypatch):
    """Ten requests to an async def endpoint all run on the loop's own thread, interleaved."""
    probe = await send_held(kata, monkeypatch, "/cached", n=10, target=10)

    loop_thread = threading.get_ident()
    others = probe.threads - {loop_thread}
    assert not others, MSG("tp4-threads", threads=len(others))
    assert probe.peak == 10, MSG("tp4-peak", peak=probe.peak)


# --- TP5: threads are bounded, coroutines are cheap -----------------------------------------------


@pytest.mark.rule("TP5")
async def test_a_hundred_blocking_requests_share_at_most_forty_threads(kata, monkeypatch):
    """100 blocking requests reuse the pool's threads: at most 40 threads, not one each."""
    probe = await send_held(kata, monkeypatch, "/reports", n=100, target=DEFAULT_LIMIT + 1)

    threads = len(probe.workers - {threading.current_thread()})
    assert threads <= DEFAULT_LIMIT and probe.peak <= DEFAULT_LIMIT, MSG(
        "tp5-threads", threads=threads, peak=probe.peak
    )
    fail_if_on_the_loop(probe, 100)
    assert threads >= 2, MSG("tp5-one-thread")


@pytest.mark.rule("TP5")
async def test_five_hundred_async_requests_wait_at_once_on_one_thread(kata, monkeypatch):
    """500 requests to an async def endpoint are all waiting at once, all on the loop's thread."""
    probe = await send_held(kata, monkeypatch, "/cached", n=500, target=500)

    threads = len(probe.workers)
    assert probe.peak == 500 and threads == 1, MSG("tp5-async", peak=probe.peak, threads=threads)
