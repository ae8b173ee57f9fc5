"""Specs of kata 09: the capstone (rules CP7, CP1, CP3, TP2, EL3). Do not edit: edit server.py.

Your app runs in this test's event loop with its lifespan around it (httpx.ASGITransport), on a
fresh copy of the blog database. Sixty requests are sent at once, each asking for a long
`pg_sleep`. A witness on its own connection counts, in pg_stat_activity, how many of those
queries PostgreSQL runs at the same time; once the count is final (every other request waits in
the pool's queue or for a worker thread, or the count stops growing) it cancels them, so a burst
ends in a moment whatever your server's limits. No stopwatch decides: the verdict is how
many ran at once, how many connections the pool lent (and opened), how many requests waited for
a thread. The probes are attached after the lifespan started, so an engine your lifespan creates
on the serving loop is seen like one create_app made.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio.to_thread
import httpx
import psycopg2
import pytest
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from kata_tools.i18n import catalog
from kata_tools.probes import loop_running_here
from kata_tools.waiting import (
    coroutines_blocked_in_the_pool,
    requests_waiting_for_a_thread,
    threads_blocked_in_a_pool,
)

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

CLIENTS = 60  # requests sent at once: more than 40 threads, more than 5 + 10 connections
HOLD = 5.0  # seconds each query of a burst asks to sleep; the witness cancels it long before
QUIET = 0.6  # the count is final once it has not grown for this long
HOLD_QUIET = 1.5  # the same for checkouts held from the pool (a cold pool connects as it lends)
BURST_LIMIT = 8.0  # a burst still running after this is stuck, not slow
DEFAULT_EXECUTOR = min(32, (os.cpu_count() or 1) + 4)  # asyncio.to_thread's threads


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
    """app.state.engine, read after the lifespan started (an engine made there counts)."""
    engine = getattr(app.state, "engine", None)
    if engine is None:
        pytest.fail(MSG("no-engine"), pytrace=False)
    return engine


class EngineProbe:
    """What the app's engine did, from SQLAlchemy's events: connections lent (at most at once, and
    in all), connections opened, the threads that borrowed them, and the statements a sync driver
    sent from the event loop's thread (blocking it)."""

    def __init__(self, engine):
        self.now = self.peak = self.lends = self.opened = 0
        self.on_loop: list[str] = []
        self.threads: set[int] = set()  # threads that borrowed with no event loop running there
        self._lock = threading.Lock()  # def endpoints check out from many threads
        if engine is not None:
            sync_engine = getattr(engine, "sync_engine", engine)  # an AsyncEngine wraps one
            event.listen(sync_engine.pool, "checkout", self._checkout)
            event.listen(sync_engine.pool, "checkin", self._checkin)
            event.listen(sync_engine.pool, "connect", self._connect)
            event.listen(sync_engine, "before_cursor_execute", self._execute)

    def _checkout(self, *_):
        with self._lock:
            self.now += 1
            self.lends += 1
            self.peak = max(self.peak, self.now)
            if not loop_running_here():
                self.threads.add(threading.get_ident())

    def _checkin(self, *_):
        with self._lock:
            self.now -= 1

    def _connect(self, *_):
        with self._lock:
            self.opened += 1

    def _execute(self, conn, cursor, statement, *_):
        if loop_running_here() and not conn.dialect.is_async:
            self.on_loop.append(statement)

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return self.lends, self.opened


class Witness(threading.Thread):
    """Counts this database's running pg_sleep queries from a connection of its own; once the
    count is final (all CLIENTS; every other request blocked(), see burst(); or no growth for
    QUIET s), cancels each one it sees."""

    COUNT = (
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
        "AND state = 'active' AND query ILIKE '%%pg_sleep%%'"
    )

    def __init__(self, db, target: int, blocked):
        super().__init__(name="kata witness", daemon=True)
        self.blocked = blocked
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
                    or (pids and len(pids) + self.blocked() >= self.target)
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
    borrowing_threads: int = 0  # threads (no event loop) that borrowed a connection
    lends: int = 0  # connections the app's pool lent during the burst
    opened: int = 0  # new connections the app's pool opened during the burst
    answers: list = field(default_factory=list)
    pool_cap: int | None = None  # pool_size + max_overflow of app.state.engine (None: no limit)

    def diagnosis(self) -> str:
        causes = []
        if self.blocking_queries:
            causes.append(MSG("cause-on-loop", queries=self.blocking_queries))
        if self.waited_for_thread:
            causes.append(
                MSG("cause-threads", waited=self.waited_for_thread, limit=self.thread_limit)
            )
        if (
            not self.waited_for_thread
            and 0 < self.borrowing_threads < CLIENTS
            and self.peak_queries <= self.borrowing_threads
        ):
            causes.append(
                MSG("cause-few-threads", threads=self.borrowing_threads, executor=DEFAULT_EXECUTOR)
            )
        if (
            self.pool_cap is not None
            and 0 < self.peak_checked_out < CLIENTS
            and self.peak_checked_out >= self.pool_cap
            and not self.blocking_queries
        ):
            causes.append(MSG("cause-pool", lent=self.peak_checked_out))
        if self.lends == 0 and self.peak_queries:
            causes.append(MSG("cause-not-this-pool"))
        return "; ".join(causes) or MSG("cause-other", peak=self.peak_queries)


async def burst(app, client, db, ids, seconds: float = HOLD, witnessed: bool = True) -> Burst:
    """One request per id, all at once, each asking for a `seconds` pg_sleep; what was counted.

    Call it inside serve(app): the probe reads app.state.engine as the running app holds it.
    """
    engine = getattr(app.state, "engine", None)
    probe = EngineProbe(engine)
    limiter = anyio.to_thread.current_default_thread_limiter()
    seen_waiting = [0]

    def blocked() -> int:
        """Requests that cannot reach the database before something comes back: waiting for
        a connection (a thread or a coroutine) or for a worker thread."""
        coroutines = coroutines_blocked_in_the_pool(engine) if engine is not None else None
        for_a_thread = requests_waiting_for_a_thread(limiter)
        seen_waiting[0] = max(seen_waiting[0], for_a_thread)  # the count may end before watch_limiter looks
        return threads_blocked_in_a_pool() + (coroutines or 0) + for_a_thread

    witness = Witness(db, target=len(ids), blocked=blocked) if witnessed else None
    waited = [0]

    async def watch_limiter():
        while True:
            waited[0] = max(waited[0], limiter.statistics().tasks_waiting)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_limiter())
    if witness:
        witness.start()
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(client.get(f"/work/{i}", params={"seconds": seconds}) for i in ids)),
            BURST_LIMIT,
        )
    except asyncio.TimeoutError:
        pytest.fail(MSG("burst-stuck", n=len(ids), limit=BURST_LIMIT), pytrace=False)
    finally:
        watcher.cancel()
        if witness:
            witness.stop()
    return Burst(
        witness.peak if witness else 0,
        probe.peak,
        max(waited[0], seen_waiting[0]),
        limiter.total_tokens,
        len(probe.on_loop),
        len(probe.threads),
        probe.lends,
        probe.opened,
        answers,
        pool_cap(engine) if engine is not None else None,
    )


async def send_burst(app, db, n: int = CLIENTS) -> Burst:
    """n requests at once, each asking for a HOLD-second pg_sleep, on a server started for it."""
    async with serve(app) as client:
        return await burst(app, client, db, random_ids(n))


def random_ids(n: int) -> list[int]:
    return random.sample(range(1000, 1_000_000), n)


# --- CP7: the server's database concurrency -----------------------------------------------------


@pytest.mark.rule("CP7")
async def test_sixty_clients_have_their_queries_running_in_the_database_at_once(kata, db):
    """Sixty requests at once run sixty queries at once: nothing caps the server below its load."""
    app = kata.create_app(db.plain_url)
    ids = random_ids(3)
    async with serve(app) as client:
        replies = await asyncio.gather(
            *(client.get(f"/work/{i}", params={"seconds": 0.01}) for i in ids)
        )
    wrong = [(r.status_code, r.text[:120]) for i, r in zip(ids, replies)
             if r.status_code != 200 or r.json() != {"request_id": i}]
    assert not wrong, MSG("bad-answer", ids=ids[:2], answers=wrong[:2])

    result = await send_burst(kata.create_app(db.plain_url), db)

    assert result.peak_queries == CLIENTS, MSG(
        "capped", peak=result.peak_queries, clients=CLIENTS, diagnosis=result.diagnosis()
    )


# --- CP1: the queries borrow from app.state.engine's pool, and it keeps its connections ---------


@pytest.mark.rule("CP1")
async def test_the_queries_borrow_pooled_connections_from_app_state_engine(kata, db):
    """Two bursts of sixty: each request borrows from app.state.engine's pool, and the second
    burst is served on connections the pool kept open, not on new ones."""
    app = kata.create_app(db.plain_url)
    async with serve(app) as client:
        engine_of(app)
        n1, n2 = random.randint(CLIENTS - 8, CLIENTS), CLIENTS
        # Short queries: even a server that runs them one at a time ends both bursts in time.
        first = await burst(app, client, db, random_ids(n1), seconds=0.02, witnessed=False)
        second = await burst(app, client, db, random_ids(n2), seconds=0.03, witnessed=False)

    failed = [r.status_code for r in first.answers + second.answers if r.status_code != 200]
    assert not failed, MSG("burst-failed", failed=len(failed), n=n1 + n2, status=failed[0] if failed else 0)
    assert first.lends >= n1 and second.lends >= n2, MSG(
        "not-this-pool", lends=first.lends + second.lends, n=n1 + n2
    )
    reused = second.lends - second.opened
    assert reused > 0, MSG(
        "no-reuse", n=n2, lends=second.lends, opened=second.opened, kept=first.opened
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

    def blocked() -> int:  # holders waiting for a connection: they cannot add to the count
        if is_async:
            return coroutines_blocked_in_the_pool(engine) or 0
        return threads_blocked_in_a_pool(holders)

    # A cold pool opens its connections now: wait for the first one as long as it takes (up to
    # the deadline), then until every other holder waits in the pool, or the count has not grown
    # for HOLD_QUIET.
    peak, last_growth, deadline = 0, None, time.monotonic() + BURST_LIMIT - 2
    while (
        peak < n
        and not (peak and peak + blocked() >= n)
        and (last_growth is None or time.monotonic() - last_growth < HOLD_QUIET)
        and time.monotonic() < deadline
    ):
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
        # The waits run on asyncio.to_thread's threads (DEFAULT_EXECUTOR of them); that only
        # delays their release, never the checkouts counted here.
        peak = await hold_checkouts(engine, CLIENTS)

    assert peak >= CLIENTS, MSG("pool-lent", clients=CLIENTS, peak=peak)


def server_room(db) -> tuple[int, int, int]:
    """(connections PostgreSQL still accepts, max_connections, connections in use), read from
    the server itself."""
    conn = psycopg2.connect(db.plain_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW max_connections")
            limit = int(cur.fetchone()[0])
            cur.execute("SHOW superuser_reserved_connections")
            reserved = int(cur.fetchone()[0])
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            usable = limit if cur.fetchone()[0] else limit - reserved
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
            )
            in_use = int(cur.fetchone()[0])
    finally:
        conn.close()
    return usable - in_use, limit, in_use


def pool_cap(engine) -> int | None:
    """The most connections the pool will open at once; None when nothing limits it."""
    pool = getattr(engine, "sync_engine", engine).pool
    if not isinstance(pool, QueuePool):
        # NullPool opens one per checkout, with no limit; StaticPool and the like hold one.
        return None if type(pool).__name__ == "NullPool" else 1
    size, overflow = pool.size(), pool._max_overflow
    if size <= 0 or overflow < 0:  # pool_size=0 or max_overflow=-1: no limit at all
        return None
    return size + overflow


@pytest.mark.rule("CP3")
async def test_the_pool_never_asks_for_more_connections_than_the_server_accepts(kata, db):
    """pool_size + max_overflow is a number, and it fits in what PostgreSQL still accepts."""
    app = kata.create_app(db.plain_url)
    async with serve(app):
        engine = engine_of(app)
        cap = pool_cap(engine)
        room, limit, in_use = server_room(db)

    pool = type(getattr(engine, "sync_engine", engine).pool).__name__
    assert cap is not None, MSG("pool-unlimited", pool=pool, room=room, limit=limit)
    assert cap <= room, MSG("pool-too-big", cap=cap, room=room, limit=limit, in_use=in_use)


# --- TP2: worker threads ------------------------------------------------------------------------


@pytest.mark.rule("TP2")
async def test_no_request_waits_for_a_worker_thread(kata, db):
    """None of sixty requests sent at once waits for a worker thread to come free."""
    result = await send_burst(kata.create_app(db.plain_url), db)

    assert result.waited_for_thread == 0, MSG(
        "waited-for-thread",
        waited=result.waited_for_thread,
        clients=CLIENTS,
        limit=result.thread_limit,
        next=result.thread_limit + 1,
    )


# --- EL3: nothing blocks the loop ---------------------------------------------------------------


@pytest.mark.rule("EL3")
async def test_no_query_blocks_the_event_loop(kata, db):
    """No query goes through a blocking driver on the event loop's thread."""
    app = kata.create_app(db.plain_url)
    n = random.randint(5, 9)
    async with serve(app) as client:
        engine = engine_of(app)
        probe = EngineProbe(engine)
        await asyncio.gather(
            *(client.get(f"/work/{i}", params={"seconds": 0.05}) for i in random_ids(n))
        )

    assert not probe.on_loop, MSG(
        "blocking-driver", blocked=len(probe.on_loop), n=n, driver=engine.dialect.driver
    )
