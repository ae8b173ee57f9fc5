"""Specs of kata 01: the event loop (rules EL1, EL2, EL3). Do not edit: edit event_loop.py.

Concurrency is checked by structure (how many calls were in flight at once, on which thread),
never by a tight stopwatch, so these specs give the same verdict on a busy machine.
"""

import asyncio
import threading
import time

import pytest

from kata_tools.probes import BlockingSpy, Heartbeat, InFlight

pytestmark = pytest.mark.asyncio

T = 0.02  # latency of one pretend request in these specs: short, so the kata runs in seconds


@pytest.fixture
def kata(kata_module):
    return kata_module("event_loop.py")


def tracked_handler(probe: InFlight, latency=lambda request_id: T):
    """An async request handler that records itself in `probe` and waits without blocking."""

    async def handler(request_id: int) -> str:
        with probe.track(request_id):
            await asyncio.sleep(latency(request_id))
        return f"response {request_id}"

    return handler


# --- EL1: one at a time ------------------------------------------------------------------------


@pytest.mark.rule("EL1")
async def test_one_at_a_time_starts_each_request_after_the_previous_finished(kata):
    """A one-worker server handles request k+1 only after request k has finished."""
    probe = InFlight()
    results = await kata.serve_one_at_a_time(tracked_handler(probe), [0, 1, 2, 3, 4])

    assert probe.calls == 5, (
        f"serve_one_at_a_time called the handler {probe.calls} times for 5 requests; "
        f"it must await the handler once per request id (EL1)."
    )
    assert probe.peak == 1 and probe.ran_one_at_a_time(), (
        f"serve_one_at_a_time had {probe.peak} requests in flight at once; a one-worker server "
        f"awaits each handler call before starting the next (EL1)."
    )
    assert results == [f"response {i}" for i in range(5)], (
        f"serve_one_at_a_time returned {results!r}; return the awaited handler results, "
        f"in request order (EL1)."
    )


@pytest.mark.rule("EL1")
async def test_one_at_a_time_the_kth_client_waits_k_times_the_latency(kata):
    """Served one at a time, request k is answered only after k x T: the last client waits longest."""
    done_at = {}
    start = time.perf_counter()

    async def handler(request_id):
        await asyncio.sleep(T)
        done_at[request_id] = time.perf_counter() - start
        return request_id

    await kata.serve_one_at_a_time(handler, [1, 2, 3, 4, 5])

    # A lower bound only: a busy machine can make it slower, never faster.
    too_early = {k: round(t, 3) for k, t in done_at.items() if t < 0.9 * k * T}
    assert len(done_at) == 5 and not too_early, (
        f"Requests finished too early for a one-at-a-time server: {too_early or done_at} "
        f"(seconds after start; request k should finish at k x {T} s or later) (EL1)."
    )


# --- EL2: one loop, many waits at once ---------------------------------------------------------


@pytest.mark.rule("EL2")
async def test_concurrently_has_every_request_in_flight_at_once(kata):
    """An event-loop server starts all N requests before any finishes: N in flight at once."""
    probe = InFlight()
    await kata.serve_concurrently(tracked_handler(probe), list(range(20)))

    assert probe.peak == 20, (
        f"serve_concurrently had at most {probe.peak} of 20 requests in flight at once. "
        f"Awaiting one call after another serialises them; start them all, then await them "
        f"together (asyncio.gather or a TaskGroup) (EL2)."
    )


@pytest.mark.rule("EL2")
async def test_concurrently_runs_every_request_on_the_one_loop_thread(kata):
    """Concurrency on an event loop needs no threads: every request runs on the loop's thread."""
    probe = InFlight()
    await kata.serve_concurrently(tracked_handler(probe), list(range(10)))

    loop_thread = threading.get_ident()
    assert probe.threads == {loop_thread} and all(probe.on_loop), (
        f"serve_concurrently ran requests on {len(probe.threads - {loop_thread})} other "
        f"thread(s). The point of an event loop is concurrency on one thread: schedule the "
        f"coroutines on this loop (asyncio.gather), do not hand them to threads (EL2)."
    )


@pytest.mark.rule("EL2")
async def test_concurrently_returns_results_in_request_order(kata):
    """Results come back in request order even when later requests finish first."""
    probe = InFlight()
    # Request 0 is the slowest, request 9 the fastest: finish order is the reverse.
    handler = tracked_handler(probe, latency=lambda request_id: (10 - request_id) * 0.005)
    results = await kata.serve_concurrently(handler, list(range(10)))

    assert list(results) == [f"response {i}" for i in range(10)], (
        f"serve_concurrently returned {list(results)!r}; results must be in request order, "
        f"not finish order (asyncio.gather keeps the order of its arguments) (EL2)."
    )


@pytest.mark.rule("EL2")
async def test_concurrently_fifty_waits_take_about_one_latency_not_fifty(kata):
    """50 requests of T each finish in about T in total, not 50 x T."""
    latency = 0.05
    start = time.perf_counter()
    await kata.serve_concurrently(tracked_handler(InFlight(), lambda _: latency), list(range(50)))
    elapsed = time.perf_counter() - start

    # 5x margin on both sides: ideal 0.05 s, limit 0.5 s, one at a time 2.5 s.
    assert elapsed < 10 * latency, (
        f"50 requests of {latency} s took {elapsed:.2f} s; concurrently they take about "
        f"{latency} s, one at a time {50 * latency} s. Start them all before awaiting (EL2)."
    )


# --- EL3: a blocking call stops the loop -------------------------------------------------------


@pytest.mark.rule("EL3")
async def test_query_database_lets_other_coroutines_run_while_it_waits(kata):
    """Five queries started together are all waiting at once: the wait does not hold the loop."""
    probe = InFlight()

    async def request(request_id):
        with probe.track(request_id):
            return await kata.query_database(request_id, latency=0.05)

    rows = await asyncio.gather(*(request(i) for i in range(5)))

    assert rows == [f"row {i}" for i in range(5)], (
        f"query_database returned {rows!r} for requests 0-4; it must return 'row <id>' (EL3)."
    )
    assert probe.peak == 5, (
        f"query_database blocked the event loop: 5 queries started together ran one at a time "
        f"(max {probe.peak} in flight). Wait with `await asyncio.sleep(...)`, not time.sleep "
        f"or a busy loop (EL3)."
    )


@pytest.mark.rule("EL3")
async def test_query_database_keeps_the_loop_responsive(kata):
    """A heartbeat task keeps ticking while query_database waits."""
    async with Heartbeat(interval=0.01) as heart:
        await kata.query_database(1, latency=0.3)
        ticks_during_the_wait = heart.ticks

    # Free loop: about 30 ticks in 0.3 s (fewer on a busy machine, never none). Blocked: none at
    # all, since the heartbeat cannot run until the wait is over. No stopwatch limit to flake.
    assert ticks_during_the_wait >= 3, (
        f"While query_database waited 0.3 s, another task on the loop ran "
        f"{ticks_during_the_wait} time(s) (it should run about 30): the wait held the loop "
        f"{heart.max_gap:.2f} s and every request on this server stalled. Use await "
        f"asyncio.sleep so the loop keeps running (EL3)."
    )


@pytest.mark.rule("EL3")
async def test_query_database_makes_no_blocking_sleep_on_the_loop(kata, monkeypatch):
    """time.sleep is never called while the event loop is running."""
    spy = BlockingSpy("time.sleep")
    monkeypatch.setattr(time, "sleep", spy.wrap(time.sleep))

    await kata.query_database(1, latency=0.01)

    assert spy.calls_on_loop == 0, (
        f"query_database called time.sleep on the event loop's thread ({spy.calls_on_loop}x): "
        f"that freezes every coroutine. Replace it with await asyncio.sleep (EL3)."
    )
