"""Specs of kata 09: the capstone (rules CP7, CP3, TP2, EL3). Do not edit: edit server.py.

Your app runs in this test's event loop with its lifespan around it (httpx.ASGITransport), on a
fresh copy of the blog database. Sixty requests are sent at once, each asking for a long
`pg_sleep`. A witness on its own connection counts, in pg_stat_activity, how many of those
queries PostgreSQL runs at the same time; once the count stops growing it cancels them, so a
burst ends in a moment whatever your server's limits. No stopwatch decides: the verdict is how
many ran at once, how many connections the pool lent, how many requests waited for a thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio.to_thread
import httpx
import psycopg2
import pytest
from sqlalchemy import event

from kata_tools.probes import loop_running_here

pytestmark = pytest.mark.asyncio

CLIENTS = 60  # requests sent at once: more than 40 threads, more than 5 + 10 connections
HOLD = 5.0  # seconds each query of a burst asks to sleep; the witness cancels it long before
QUIET = 0.6  # the count is final once it has not grown for this long
BURST_LIMIT = 8.0  # a burst still running after this is stuck, not slow


@pytest.fixture
def kata(kata_module):
    return kata_module("server.py")


@pytest.fixture
def db(seeded_db):
    """The spec's own copy of the seeded blog database (its teardown checks for leaked connections)."""
    return seeded_db


# --- helpers ------------------------------------------------------------------------------------


@asynccontextmanager
async def serve(app):
    """The app's lifespan around an httpx client, as a server runs it (ASGITransport alone does not).

    raise_app_exceptions=False: a request whose query the witness cancelled answers 500, as it
    would to a real client, instead of raising here.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def engine_of(app):
    engine = getattr(app.state, "engine", None)
    assert engine is not None, (
        "create_app must keep its engine on app.state.engine: the specs read its pool there "
        "(server.py's docstring says so) (CP3)."
    )
    return engine


class EngineProbe:
    """What the app's engine did, from SQLAlchemy's events: the most connections its pool lent at
    once, and the statements a sync driver sent from the event loop's thread (blocking it)."""

    def __init__(self, engine):
        self.now = self.peak = 0
        self.on_loop: list[str] = []
        self._lock = threading.Lock()  # def endpoints check out from many threads
        if engine is not None:
            sync_engine = getattr(engine, "sync_engine", engine)  # an AsyncEngine wraps one
            event.listen(sync_engine.pool, "checkout", self._checkout)
            event.listen(sync_engine.pool, "checkin", self._checkin)
            event.listen(sync_engine, "before_cursor_execute", self._execute)

    def _checkout(self, *_):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def _checkin(self, *_):
        with self._lock:
            self.now -= 1

    def _execute(self, conn, cursor, statement, *_):
        if loop_running_here() and not conn.dialect.is_async:
            self.on_loop.append(statement)


class Witness(threading.Thread):
    """Counts this database's running pg_sleep queries from a connection of its own; once the
    count is final (all CLIENTS, or no growth for QUIET s), cancels each one it sees."""

    COUNT = (
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
        "AND state = 'active' AND query ILIKE '%%pg_sleep%%'"
    )

    def __init__(self, db, target: int):
        super().__init__(name="kata witness", daemon=True)
        self.conn = psycopg2.connect(db.plain_url)
        self.conn.autocommit = True
        self.database, self.target = db.name, target
        self.peak = 0
        self.counted = threading.Event()
        self.stopped = threading.Event()

    def run(self):
        deadline = time.monotonic() + BURST_LIMIT - 2
        last_growth = None
        with self.conn.cursor() as cur:
            while not self.stopped.is_set():
                cur.execute(self.COUNT, (self.database,))
                pids = [row[0] for row in cur.fetchall()]
                now = time.monotonic()
                if len(pids) > self.peak:
                    self.peak, last_growth = len(pids), now
                if not self.counted.is_set() and (
                    self.peak >= self.target
                    or (last_growth is not None and now - last_growth > QUIET)
                    or now > deadline
                ):
                    self.counted.set()
                if self.counted.is_set() and pids:
                    cur.execute("SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
                time.sleep(0.01)

    def stop(self):
        self.stopped.set()
        self.join(5)
        self.conn.close()


@dataclass
class Burst:
    peak_queries: int  # most pg_sleep queries running in PostgreSQL at once
    peak_checked_out: int  # most connections the app's pool had lent at once
    waited_for_thread: int  # most requests waiting at once for a worker thread
    thread_limit: int  # the default thread limiter's tokens while serving
    blocking_queries: int  # queries sent by a sync driver from the event loop's thread

    def diagnosis(self) -> str:
        causes = []
        if self.blocking_queries:
            causes.append(
                f"{self.blocking_queries} queries went through a sync driver on the event loop's "
                f"thread, so the loop served one request at a time (EL3)"
            )
        if self.waited_for_thread:
            causes.append(
                f"{self.waited_for_thread} requests waited for one of {self.thread_limit} worker "
                f"threads (TP2)"
            )
        if 0 < self.peak_checked_out < CLIENTS and not self.blocking_queries:
            causes.append(
                f"the pool lent at most {self.peak_checked_out} connections at once (CP3)"
            )
        return "; ".join(causes) or (
            "neither the pool nor FastAPI's thread limiter was the cap, so look for another "
            "limit between a request and its query (a thread pool or a semaphore of your own)"
        )


async def send_burst(app, db, n: int = CLIENTS) -> Burst:
    """n requests at once, each asking for a HOLD-second pg_sleep; returns what was counted."""
    probe = EngineProbe(getattr(app.state, "engine", None))
    witness = Witness(db, target=n)
    async with serve(app) as client:
        limiter = anyio.to_thread.current_default_thread_limiter()
        waited = [0]

        async def watch_limiter():
            while True:
                waited[0] = max(waited[0], limiter.statistics().tasks_waiting)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_limiter())
        witness.start()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(client.get(f"/work/{i}", params={"seconds": HOLD}) for i in range(n))),
                BURST_LIMIT,
            )
        except asyncio.TimeoutError:
            pytest.fail(
                f"{n} requests sent at once were not all answered within {BURST_LIMIT:g} s, even "
                f"with their queries cancelled after counting: a request waits for something that "
                f"never comes (a connection never given back to the pool, a lock, an endless "
                f"await). Rule CP7: see the kata's README.",
                pytrace=False,
            )
        finally:
            watcher.cancel()
            witness.stop()
    return Burst(witness.peak, probe.peak, waited[0], limiter.total_tokens, len(probe.on_loop))


# --- CP7: the server's database concurrency -----------------------------------------------------


@pytest.mark.rule("CP7")
async def test_sixty_clients_have_their_queries_running_in_the_database_at_once(kata, db):
    """Sixty requests at once run sixty queries at once: nothing caps the server below its load."""
    app = kata.create_app(db.plain_url)
    async with serve(app) as client:
        replies = await asyncio.gather(
            *(client.get(f"/work/{i}", params={"seconds": 0.01}) for i in range(3))
        )
    wrong = [(r.status_code, r.text[:120]) for i, r in enumerate(replies)
             if r.status_code != 200 or r.json() != {"request_id": i}]
    assert not wrong, (
        f"GET /work/{{request_id}}?seconds=0.01 answered {wrong[:2]}; it must run the query and "
        f"answer {{\"request_id\": <request_id>}} with status 200 (CP7)."
    )

    burst = await send_burst(kata.create_app(db.plain_url), db)

    assert burst.peak_queries == CLIENTS, (
        f"At most {burst.peak_queries} of {CLIENTS} queries ran in PostgreSQL at once "
        f"(pg_stat_activity), so the last clients wait several query times: "
        f"{burst.diagnosis()}. A server runs as many queries at once as the smallest of its "
        f"workers and its pool allows; raise every cap to {CLIENTS} (CP7)."
    )


# --- CP3: the pool's limit ----------------------------------------------------------------------


async def hold_checkouts(engine, n: int) -> int:
    """Check out n connections at once and hold them; returns how many were held at the peak."""
    held, release = [0], threading.Event()
    lock = threading.Lock()

    def hold_sync():
        with engine.connect():
            with lock:
                held[0] += 1
            release.wait(BURST_LIMIT)

    async def hold_async():
        async with engine.connect():
            held[0] += 1
            await asyncio.to_thread(release.wait, BURST_LIMIT)

    is_async = hasattr(engine, "sync_engine")
    if is_async:
        holders = [asyncio.create_task(hold_async()) for _ in range(n)]
    else:
        holders = [threading.Thread(target=hold_sync, daemon=True) for _ in range(n)]
        for t in holders:
            t.start()
    peak, last_growth, deadline = 0, time.monotonic(), time.monotonic() + BURST_LIMIT - 2
    while peak < n and time.monotonic() - last_growth < QUIET and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        if held[0] > peak:
            peak, last_growth = held[0], time.monotonic()
    release.set()  # the waiting checkouts now get connections, and give them straight back
    if is_async:
        await asyncio.gather(*holders, return_exceptions=True)
    else:
        for t in holders:
            await asyncio.to_thread(t.join, 5)
    return peak


@pytest.mark.rule("CP3")
async def test_the_pool_lends_sixty_connections_at_once(kata, db):
    """The engine's pool lends a connection to each of sixty holders at the same time."""
    app = kata.create_app(db.plain_url)
    async with serve(app):
        engine = engine_of(app)
        peak = await hold_checkouts(engine, CLIENTS)

    assert peak >= CLIENTS, (
        f"{CLIENTS} checkouts at once from app.state.engine: the pool lent {peak} connections, "
        f"then made the rest wait. A pool lends at most pool_size + max_overflow connections "
        f"(5 + 10 = 15 by default); give it room for {CLIENTS} (CP3)."
    )


# --- TP2: worker threads ------------------------------------------------------------------------


@pytest.mark.rule("TP2")
async def test_no_request_waits_for_a_worker_thread(kata, db):
    """None of sixty requests sent at once waits for a worker thread to come free."""
    burst = await send_burst(kata.create_app(db.plain_url), db)

    assert burst.waited_for_thread == 0, (
        f"{burst.waited_for_thread} of {CLIENTS} requests waited for a worker thread: def "
        f"endpoints run on anyio's thread pool, {burst.thread_limit} threads here, and request "
        f"{burst.thread_limit + 1} waits for one to come free. Raise the limit in the lifespan "
        f"(TP3), or make the endpoint async def so it needs no thread (TP2)."
    )


# --- EL3: nothing blocks the loop ---------------------------------------------------------------


@pytest.mark.rule("EL3")
async def test_no_query_blocks_the_event_loop(kata, db):
    """No query goes through a blocking driver on the event loop's thread."""
    app = kata.create_app(db.plain_url)
    engine = engine_of(app)
    probe = EngineProbe(engine)
    async with serve(app) as client:
        await asyncio.gather(*(client.get(f"/work/{i}", params={"seconds": 0.05}) for i in range(5)))

    assert not probe.on_loop, (
        f"{len(probe.on_loop)} of 5 queries ran through a blocking driver "
        f"({engine.dialect.driver}) on the event loop's thread: while each one waits, the whole "
        f"server waits, and sixty "
        f"clients are served one after another. Inside async def, query through an async "
        f"engine (asyncpg) and await it (EL3)."
    )
