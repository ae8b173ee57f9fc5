"""kata_tools.waiting: who waits for a connection or a thread, read from the libraries' own state,
and what is due on an event loop. Kata 04 and 09 end their counts on these, kata 11's TO3 spec
its wait, kata 03's server its hold; if a library changes its insides, these fail here (the specs would only fall back to
their slower pauses)."""

import asyncio
import socket
import threading
import time
import urllib.request

import anyio.to_thread
import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_tools.waiting import (
    coroutines_blocked_in_the_pool,
    nothing_due_but_io,
    only_answers_can_move,
    requests_waiting_for_a_thread,
    threads_at_work,
    threads_blocked_in_a_pool,
)

pytestmark = pytest.mark.timeout(30)


def eventually(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_threads_waiting_in_a_full_pool_are_counted_and_a_sleeping_one_is_not(seeded_db):
    engine = create_engine(seeded_db.sync_url, pool_size=1, max_overflow=0, pool_timeout=10)
    held = engine.connect()
    waiters = [threading.Thread(target=lambda: engine.connect().close()) for _ in range(3)]
    sleeper = threading.Thread(target=time.sleep, args=(0.5,))
    try:
        for t in [*waiters, sleeper]:
            t.start()
        assert eventually(lambda: threads_blocked_in_a_pool(waiters) == 3)
        assert threads_blocked_in_a_pool([sleeper]) == 0
        assert threads_blocked_in_a_pool() == 3  # all threads of the process
    finally:
        held.close()  # each waiter in turn gets the connection and gives it back
        for t in [*waiters, sleeper]:
            t.join(10)
        engine.dispose()
    assert threads_blocked_in_a_pool(waiters) == 0


def test_a_thread_that_takes_a_free_connection_is_not_counted(seeded_db):
    engine = create_engine(seeded_db.sync_url, pool_size=2, max_overflow=0)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            assert threads_blocked_in_a_pool([threading.current_thread()]) == 0
    finally:
        engine.dispose()


@pytest.mark.asyncio
async def test_coroutines_waiting_in_a_full_async_pool_are_counted(seeded_db):
    engine = create_async_engine(seeded_db.async_url, pool_size=1, max_overflow=0, pool_timeout=10)
    try:
        async with engine.connect():

            async def take():
                async with engine.connect():
                    pass

            tasks = [asyncio.create_task(take()) for _ in range(4)]
            for _ in range(200):
                await asyncio.sleep(0.01)
                if coroutines_blocked_in_the_pool(engine) == 4:
                    break
            assert coroutines_blocked_in_the_pool(engine) == 4
        await asyncio.gather(*tasks)
        assert coroutines_blocked_in_the_pool(engine) == 0
    finally:
        await engine.dispose()


def test_a_pool_without_an_asyncio_queue_says_it_cannot_tell(seeded_db):
    engine = create_engine(seeded_db.sync_url)
    try:
        assert coroutines_blocked_in_the_pool(engine) is None
    finally:
        engine.dispose()


@pytest.mark.asyncio
async def test_requests_beyond_the_thread_limiter_are_counted_as_waiting():
    limiter = anyio.CapacityLimiter(2)
    release = threading.Event()
    calls = [
        asyncio.create_task(anyio.to_thread.run_sync(release.wait, 5, limiter=limiter)) for _ in range(5)
    ]
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if requests_waiting_for_a_thread(limiter) == 3:
                break
        assert requests_waiting_for_a_thread(limiter) == 3
    finally:
        release.set()
        await asyncio.gather(*calls)
    assert requests_waiting_for_a_thread(limiter) == 0


async def due_but_io(tasks, within: float) -> bool:
    await asyncio.sleep(0)  # every task started has reached its first await
    loop = asyncio.get_running_loop()
    return nothing_due_but_io(loop, {asyncio.current_task(), *tasks}, loop.time() + within)


def test_a_loop_whose_other_tasks_wait_on_io_or_a_far_timer_has_nothing_due():
    async def main():
        never = asyncio.get_running_loop().create_future()  # what a socket's answer looks like
        waiting_on_io = asyncio.ensure_future(never)
        far = asyncio.ensure_future(asyncio.sleep(30))
        try:
            assert await due_but_io(set(), within=1.0)
            assert not await due_but_io(set(), within=60.0), "the 30 s sleep is due within 60 s"
        finally:
            waiting_on_io.cancel()
            far.cancel()

    asyncio.run(main())


def test_a_poll_sleep_a_timer_or_a_ready_callback_of_someone_else_is_due():
    async def poll():
        while True:
            await asyncio.sleep(0.2)

    async def main():
        loop = asyncio.get_running_loop()
        poller = asyncio.ensure_future(poll())
        await asyncio.sleep(0)
        assert not await due_but_io(set(), within=1.0), "another task's sleep is due"
        assert await due_but_io({poller}, within=1.0), "a sleep of a task counted as ours"
        poller.cancel()
        timer = loop.call_later(0.5, print)
        assert not await due_but_io(set(), within=1.0), "a callback of a kind it does not know"
        timer.cancel()
        assert await due_but_io(set(), within=1.0)

    asyncio.run(main())


def test_a_busy_worker_thread_or_one_running_the_given_file_is_at_work():
    async def main():
        assert not threads_at_work([__file__]), "no worker yet"
        job = asyncio.ensure_future(asyncio.to_thread(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        assert threads_at_work([]), "a concurrent.futures worker runs a job"
        await job
        assert not threads_at_work([]), "the worker is idle again"
        job = asyncio.ensure_future(anyio.to_thread.run_sync(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        assert threads_at_work([]), "an anyio worker runs a job"
        await job
        assert not threads_at_work([]), "the anyio worker is idle again"

    asyncio.run(main())
    mine = threading.Thread(target=lambda: time.sleep(0.3))  # a lambda of this file
    mine.start()
    try:
        assert threads_at_work([__file__])
    finally:
        mine.join()


def test_clients_blocked_reading_answers_and_an_idle_loop_can_only_wait_for_answers():
    """urllib and httpx.Client blocked on a server that never answers, an event loop whose task
    awaits I/O: nothing can move. A timer due on the loop, or a thread at time.sleep, can."""
    session = {t.ident for t in threading.enumerate()}  # the session's own (a database's copy makers)
    listener = socket.create_server(("127.0.0.1", 0))  # never accepts: the requests wait in the backlog
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    loop = asyncio.new_event_loop()
    never = loop.create_future()
    loop.call_soon(asyncio.ensure_future, never)  # a task that waits, as one on a socket does
    looper = threading.Thread(target=loop.run_forever)

    def quietly(request):
        try:
            request()
        except Exception:  # the listener closed at the end: the read fails, as expected
            pass

    clients = [
        threading.Thread(target=quietly, args=(lambda: urllib.request.urlopen(url, timeout=10).read(),)),
        threading.Thread(target=quietly, args=(lambda: httpx.Client(timeout=10).get(url),)),
    ]
    for thread in [looper, *clients]:
        thread.daemon = True
        thread.start()
    try:
        assert eventually(lambda: only_answers_can_move(loop, skip=session))
        timer = []
        loop.call_soon_threadsafe(lambda: timer.append(loop.call_later(30, print)))
        assert eventually(lambda: timer)
        assert not only_answers_can_move(loop, skip=session, within=60), "a timer due within 60 s"
        assert only_answers_can_move(loop, skip=session, within=1)
        sleeper = threading.Thread(target=lambda: time.sleep(0.5), daemon=True)
        sleeper.start()
        assert not only_answers_can_move(loop, skip=session), "a thread at time.sleep"
        sleeper.join()
    finally:
        listener.close()  # the clients' reads fail and their threads end
        loop.call_soon_threadsafe(loop.stop)
        for thread in [looper, *clients]:
            thread.join(10)
        loop.close()
