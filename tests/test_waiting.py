"""kata_tools.waiting: who waits for a connection or a thread, read from the libraries' own state.
Kata 04 and 09 end their counts on these; if a library changes its insides, these fail here
(the specs would only fall back to their slower pauses)."""

import asyncio
import threading
import time

import anyio.to_thread
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_tools.waiting import (
    coroutines_blocked_in_the_pool,
    requests_waiting_for_a_thread,
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
