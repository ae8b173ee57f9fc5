"""Specs of kata 04: the connection pool (rules CP1-CP8). Do not edit: edit pool.py.

The specs run against a real PostgreSQL (each its own fresh copy of the blog database) and count
what happened there: server connections (backend pids, pg_stat_activity), pool checkouts, queries
running at once. Queries that must overlap wait on a lock the spec holds (the "gate") until the
spec has counted them, so the verdict does not depend on how fast or busy the machine is.
The failure messages live in messages.toml beside this file, in English and Korean.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import warnings

import anyio.to_thread
import psycopg2
import pytest
import sqlalchemy.exc
from sqlalchemy import event

from kata_tools.i18n import catalog
from kata_tools.waiting import (
    coroutines_blocked_in_the_pool,
    requests_waiting_for_a_thread,
    threads_blocked_in_a_pool,
)

MSG = catalog(__file__)

PID_SQL = "SELECT pg_backend_pid()"
GATE_KEY = 4204
# Waits at the database until the spec opens the gate; the lock goes when the transaction ends.
WAIT_SQL = f"SELECT pg_advisory_xact_lock_shared({GATE_KEY})"

# Creating an engine connects nothing (CP6), so the specs of the defaults need no database.
NOWHERE_SYNC = "postgresql+psycopg2://kata@/never_connected?host=/nonexistent"
NOWHERE_ASYNC = "postgresql+asyncpg://kata@/never_connected?host=/nonexistent"


@pytest.fixture
def kata(kata_module):
    return kata_module("pool.py")


@pytest.fixture
def db(seeded_db):
    """The spec's own copy of the seeded blog database (its teardown checks for leaked connections)."""
    return seeded_db


def fail(key: str, **fields) -> None:
    pytest.fail(MSG(key, **fields), pytrace=False)


# --- helpers: what the database and the pool saw -----------------------------------------------


def server_connection(db):
    conn = psycopg2.connect(db.plain_url)
    conn.autocommit = True
    return conn


class Gate:
    """Holds an exclusive advisory lock: every WAIT_SQL query waits at the server until open()."""

    def __init__(self, db):
        self.conn = server_connection(db)
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (GATE_KEY,))

    def waiting(self) -> int:
        """Server connections whose query waits at the gate right now."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
            return cur.fetchone()[0]

    def open(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")

    def close(self) -> None:
        self.conn.close()


def backend_alive(db, pid: int) -> bool:
    """Is the server process `pid` still connected, once a closing one has had 1 s to leave?"""
    conn = server_connection(db)
    try:
        with conn.cursor() as cur:
            deadline = time.monotonic() + 1
            while True:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                alive = cur.fetchone()[0] > 0
                if not alive or time.monotonic() > deadline:
                    return alive
                time.sleep(0.02)
    finally:
        conn.close()


def connections_once_settled(db, expected: int, pool) -> int:
    """Server connections to the spec's database, once closed ones have had up to 1 s to leave.

    Settled early when the count is `expected`, or when it is what `pool` still holds open: then
    no closed connection is left to leave, and a wrong count (a pool that kept 5 where 2 were
    asked for, or kept none) will not change by waiting.
    """
    deadline = time.monotonic() + 1
    while True:
        n = db.open_connections()
        if n in (expected, held_open(pool)) or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def held_open(pool) -> int | None:
    """Connections the pool holds open, idle or lent; None for a pool that cannot say."""
    try:
        return pool.checkedin() + pool.checkedout()
    except Exception:  # a pool of the learner's own making: fall back to waiting
        return None


class PoolWatch:
    """Counts checkouts in flight (and their peak) and new connections, with the pool's events."""

    def __init__(self, engine):
        target = getattr(engine, "sync_engine", engine)  # an AsyncEngine's pool lives there
        self.current = self.peak = self.connects = 0
        self._lock = threading.Lock()
        event.listen(target, "checkout", self._checkout)
        event.listen(target, "checkin", self._checkin)
        event.listen(target, "connect", self._connect)

    def _checkout(self, *args):
        with self._lock:
            self.current += 1
            self.peak = max(self.peak, self.current)

    def _checkin(self, *args):
        with self._lock:
            self.current -= 1

    def _connect(self, *args):
        with self._lock:
            self.connects += 1


def peak_of(count, expected: int, busy, settled) -> int:
    """Poll count() while busy() and return the highest value seen.

    Stops once the count went past `expected`, stayed at `expected` for 0.25 s (at once when
    settled() says no worker is left that could add to it), stayed below it for 1.5 s without
    changing, when the workers are all done, or after 6 s.
    """
    peak, last, since = 0, None, time.monotonic()
    deadline = since + 6
    while time.monotonic() < deadline and busy():
        n = count()
        peak = max(peak, n)
        now = time.monotonic()
        if n > expected or (n == expected and settled()):
            break
        if n != last:
            last, since = n, now
        elif now - since >= (0.25 if n == expected else 1.5):
            break
        time.sleep(0.01)
    return peak


def in_threads(n: int, fn):
    """Start n daemon threads each calling fn(); return (threads, results, errors)."""
    results, errors = [], []

    def work():
        try:
            results.append(fn())
        except BaseException as e:  # reported by the spec
            errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results, errors


def still_running(threads, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return sum(t.is_alive() for t in threads)


def raise_todo(errors) -> None:
    """A TODO still raising NotImplementedError in a worker: show it as the plugin shows a TODO."""
    for error in errors:
        if isinstance(error, NotImplementedError):
            raise error


def describe(error: BaseException) -> str:
    first_line = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__module__}.{type(error).__name__}: {first_line}"


def pooled(engine, maker: str):
    """Fail with a lesson when the engine has no real pool (NullPool, StaticPool, ...)."""
    if not hasattr(engine.pool, "checkedout"):
        fail("no-pool", maker=maker, kind=type(engine.pool).__name__)
    return engine


def sync_engine(kata, url, **options):
    """The learner's make_engine, checked to have a pool."""
    return pooled(kata.make_engine(url, **options), "make_engine")


def async_engine(kata, url, **options):
    """The learner's make_async_engine, with a teaching failure for the QueuePool trap."""
    try:
        engine = kata.make_async_engine(url, **options)
    except sqlalchemy.exc.ArgumentError as e:
        fail("async-queue-pool", error=str(e).split(" (Background")[0])
    return pooled(engine, "make_async_engine")


def engine_without_server(kata, **options):
    """The learner's make_engine on a URL where no server answers: fine if it does not connect."""
    try:
        return kata.make_engine(NOWHERE_SYNC, **options)
    except sqlalchemy.exc.DBAPIError as e:
        fail("connects-at-creation", error=type(e).__name__)


# Two pools for the bursts: the default one, and one of other sizes, so a figure that is right
# only for 5 + 10 (a hard-coded 15, a semaphore) shows.
BURSTS = {
    "default-pool": dict(options={}, requests=30, size=5, overflow=10),
    "pool-4-plus-7": dict(options={"pool_size": 4, "max_overflow": 7}, requests=25, size=4, overflow=7),
}


def burst_through_the_pool(kata, db, options: dict, requests: int, size: int, overflow: int) -> dict:
    """`requests` threads each run one WAIT_SQL request through make_engine; return what was seen."""
    engine = sync_engine(kata, db.sync_url, **options)
    watch = PoolWatch(engine)
    gate = Gate(db)
    seen = {}
    try:
        threads, _, errors = in_threads(requests, lambda: kata.run_query(engine, WAIT_SQL))
        running = lambda: any(t.is_alive() for t in threads)  # noqa: E731
        # Settled when every thread the pool did not lend to is blocked in its queue.
        settled = lambda: threads_blocked_in_a_pool(threads) == requests - size - overflow  # noqa: E731
        seen["peak_waiting"] = peak_of(gate.waiting, size + overflow, busy=running, settled=settled)
        seen["peak_checked_out"] = watch.peak
        gate.open()
        seen["stuck"] = still_running(threads, timeout=3)
        seen["errors"] = errors
        gate.close()
        seen["idle_in_pool"] = engine.pool.checkedin()
        seen["server_connections"] = connections_once_settled(db, size, engine.pool)
    finally:
        gate.close()
        engine.dispose()
    return seen


# --- CP1: connecting costs; the pool lends one connection again and again ----------------------


@pytest.mark.rule("CP1")
def test_twenty_requests_in_a_row_are_served_by_one_server_connection(kata, db):
    """Requests through one engine reuse one pooled connection: one backend pid, one connect."""
    engine = sync_engine(kata, db.sync_url)
    watch = PoolWatch(engine)
    a, b = random.randint(100, 999), random.randint(1000, 9999)
    pids, left_out = [], 0
    try:
        value = kata.run_query(engine, f"SELECT {a} + {b}")
        try:
            empty, empty_error = kata.run_query(engine, "SELECT 1 WHERE false"), None
        except sqlalchemy.exc.SQLAlchemyError as e:
            empty, empty_error = None, e
        start = time.perf_counter()
        for _ in range(20):
            pids.append(kata.run_query(engine, PID_SQL))
            left_out = engine.pool.checkedout()
            if left_out:
                break  # the pool would run dry after 15 such requests
        elapsed = time.perf_counter() - start
    finally:
        engine.dispose()

    if value != a + b:
        fail("cp1-value", sql=f"SELECT {a} + {b}", value=value, expected=a + b)
    if empty_error is not None or empty is not None:
        got = describe(empty_error) if empty_error is not None else repr(empty)
        fail("cp1-empty", got=got)
    if left_out:
        fail("cp1-not-returned")
    if len(set(pids)) != 1 or watch.connects > 1:
        fail("cp1-new-connections", backends=len(set(pids)), connects=watch.connects,
             ms=elapsed * 1000)


@pytest.mark.rule("CP1")
@pytest.mark.asyncio
async def test_twenty_async_requests_in_a_row_are_served_by_one_server_connection(kata, db):
    """An async engine's pool lends the same connection again: one backend pid for 20 requests."""
    engine = async_engine(kata, db.async_url)
    n = random.randint(100, 999)
    pids = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = await kata.run_query_async(engine, f"SELECT {n} * 2")
            for _ in range(20):
                pids.append(await kata.run_query_async(engine, PID_SQL))
    finally:
        await engine.dispose()

    unreturned = [w for w in caught if "non-checked-in connection" in str(w.message)]
    if unreturned:
        fail("cp1-async-gc", n=len(unreturned))
    if value != n * 2:
        fail("cp1-value", sql=f"SELECT {n} * 2", value=value, expected=n * 2)
    if len(set(pids)) != 1:
        fail("cp1-async-new-connections", backends=len(set(pids)))


# --- CP2: the options and their defaults -------------------------------------------------------


def default_settings(engine) -> dict:
    pool = engine.pool
    return {
        "pool_size": pool.size() if hasattr(pool, "size") else None,
        "pool_timeout": pool.timeout() if hasattr(pool, "timeout") else None,
        # The one setting with no public reader, and no behaviour a spec can wait for (never
        # recycling takes forever). Its pass-through is judged by behaviour in the CP8 spec.
        "pool_recycle": getattr(pool, "_recycle", None),
    }


DEFAULTS = {"pool_size": 5, "pool_timeout": 30, "pool_recycle": -1}


def differences(got: dict, want: dict) -> str:
    return ", ".join(f"{k}={got[k]!r} ({want[k]!r})" for k in want if got[k] != want[k])


@pytest.mark.rule("CP2")
def test_make_engine_without_options_keeps_sqlalchemys_defaults(kata):
    """Left out, the options are pool_size 5, pool_timeout 30 s, no recycling (max_overflow: CP3)."""
    engine = engine_without_server(kata)
    try:
        got, kind = default_settings(engine), type(engine.pool).__name__
    finally:
        engine.dispose()
    if kind != "QueuePool":
        fail("cp2-kind", maker="make_engine", kind=kind, expected="QueuePool")
    if got != DEFAULTS:
        key = "cp2-defaults-notes" if got["pool_recycle"] == 1800 else "cp2-defaults"
        fail(key, maker="make_engine", differences=differences(got, DEFAULTS))


# Two sets of options, so values that only happen to match one set fail the other.
CUSTOM = {
    "2-plus-3": {"pool_size": 2, "max_overflow": 3, "pool_timeout": 0.3},
    "3-plus-1": {"pool_size": 3, "max_overflow": 1, "pool_timeout": 0.1},
}


def pool_wait(seen: dict, pool) -> None:
    """How long the pool makes a checkout past its limit wait: its own pool_timeout setting.

    A checkout seen blocked in the pool's queue proves the limit; how long it would stay there
    is the pool's timeout(), read instead of waited out (that wait never ends early: it would
    cost every run the whole pool_timeout). A pool that cannot say keeps the wait measured.
    """
    timeout = getattr(pool, "timeout", None)
    if callable(timeout):
        seen["waited"], seen["read"] = timeout(), True


def what_the_pool_did(engine, db, options: dict) -> dict:
    """Check out pool_size + max_overflow connections, then one more in a thread: it must wait
    in the pool's queue. Then give them all back."""
    limit = options["pool_size"] + options["max_overflow"]
    held, seen = [], {"lent": 0, "extra": "lent", "waited": None, "read": False}
    threads, got, errors = [], [], []
    try:
        for _ in range(limit):
            held.append(engine.connect())
        seen["lent"] = len(held)
        start = time.perf_counter()
        threads, got, errors = in_threads(1, engine.connect)
        deadline = time.monotonic() + options["pool_timeout"] + 3
        while threads[0].is_alive() and time.monotonic() < deadline:
            if threads_blocked_in_a_pool(threads):  # waits for a connection: the limit holds
                seen["extra"] = "waits"
                break
            time.sleep(0.005)
        else:  # it ended before it was seen waiting: lent a connection, or gave up at once
            if errors and not isinstance(errors[0], sqlalchemy.exc.TimeoutError):
                raise errors[0]
            seen["extra"] = "TimeoutError" if errors else "lent"
            seen["waited"] = time.perf_counter() - start
    finally:
        for connection in held:
            connection.close()  # the waiting checkout gets one of them
        still_running(threads, timeout=3)
        for connection in got:
            connection.close()
    pool_wait(seen, engine.pool)
    seen["idle"] = engine.pool.checkedin()
    seen["server"] = connections_once_settled(db, options["pool_size"], engine.pool)
    return seen


def judge_pool(seen: dict, options: dict, maker: str) -> None:
    limit = options["pool_size"] + options["max_overflow"]
    shown = ", ".join(f"{k}={v}" for k, v in options.items())
    timeout = options["pool_timeout"]
    if seen["extra"] == "lent":
        fail("cp2-no-limit", maker=maker, options=shown, limit=limit)
    waited = seen["waited"]
    if not isinstance(waited, (int, float)):
        right, waited = False, 0.0
    elif seen["read"]:  # the pool's own setting: exact
        right = math.isclose(waited, timeout)
    else:  # measured: it may run late on a busy machine
        right = timeout * 0.8 <= waited <= timeout + 3
    if not right:
        fail("cp2-wrong-wait", maker=maker, options=shown, limit=limit, waited=waited, timeout=timeout)
    if (seen["idle"], seen["server"]) != (options["pool_size"], options["pool_size"]):
        fail("cp2-kept", maker=maker, options=shown, idle=seen["idle"], server=seen["server"],
             size=options["pool_size"])


@pytest.mark.rule("CP2")
@pytest.mark.parametrize("options", CUSTOM.values(), ids=CUSTOM)
def test_make_engine_passes_every_pool_option_through(kata, db, options):
    """The pool lends pool_size + max_overflow, waits pool_timeout for the next, keeps pool_size."""
    engine = sync_engine(kata, db.sync_url, **options)
    try:
        seen = what_the_pool_did(engine, db, options)
    finally:
        engine.dispose()
    judge_pool(seen, options, "make_engine")


@pytest.mark.rule("CP2")
@pytest.mark.asyncio
async def test_make_async_engine_takes_the_same_options_and_defaults(kata, db):
    """create_async_engine takes the same pool options, with the same defaults, on an async pool."""
    default = async_engine(kata, NOWHERE_ASYNC)
    try:
        got_default, kind = default_settings(default), type(default.pool).__name__
    finally:
        await default.dispose()
    if kind != "AsyncAdaptedQueuePool":
        fail("cp2-kind", maker="make_async_engine", kind=kind, expected="AsyncAdaptedQueuePool")
    if got_default != DEFAULTS:
        fail("cp2-defaults", maker="make_async_engine",
             differences=differences(got_default, DEFAULTS))

    options = {"pool_size": 2, "max_overflow": 2, "pool_timeout": 0.15}
    engine = async_engine(kata, db.async_url, **options)
    held, seen = [], {"lent": 0, "extra": "lent", "waited": None, "read": False}
    extra = None
    try:
        for _ in range(4):
            held.append(await engine.connect())
        start = time.perf_counter()
        extra = asyncio.ensure_future(engine.connect())  # an awaitable AsyncConnection, not a coroutine
        deadline = time.monotonic() + options["pool_timeout"] + 3
        while not extra.done() and time.monotonic() < deadline:
            if coroutines_blocked_in_the_pool(engine):  # waits for a connection: the limit holds
                seen["extra"] = "waits"
                break
            await asyncio.sleep(0.005)
        else:
            timed_out = extra.done() and isinstance(extra.exception(), sqlalchemy.exc.TimeoutError)
            seen["extra"] = "TimeoutError" if timed_out else "lent"
            seen["waited"] = time.perf_counter() - start
        for connection in held:
            await connection.close()  # the waiting checkout gets one of them
        held = []
        done, _ = await asyncio.wait({extra}, timeout=3)
        if done and extra.exception() is None:
            await extra.result().close()
        pool_wait(seen, engine.pool)
        seen["idle"] = engine.pool.checkedin()
        seen["server"] = await asyncio.to_thread(connections_once_settled, db, 2, engine.pool)
    finally:
        for connection in held:
            await connection.close()
        if extra is not None and not extra.done():
            extra.cancel()
        await engine.dispose()
    judge_pool(seen, options, "make_async_engine")


# --- CP3: never more than pool_size + max_overflow at once ------------------------------------


@pytest.mark.rule("CP3")
@pytest.mark.parametrize("burst", BURSTS.values(), ids=BURSTS)
def test_concurrent_requests_get_at_most_pool_size_plus_max_overflow_connections(kata, db, burst):
    """30 threads asking at once get 15 connections (25 asking get 4 + 7 = 11); the rest wait."""
    seen = burst_through_the_pool(kata, db, **burst)
    n, limit = burst["requests"], burst["size"] + burst["overflow"]

    raise_todo(seen["errors"])
    if seen["stuck"]:
        fail("cp3-stuck", stuck=seen["stuck"], n=n)
    if seen["errors"]:
        fail("cp3-errors", failed=len(seen["errors"]), n=n, error=describe(seen["errors"][0]),
             limit=limit)
    if seen["peak_waiting"] != limit or seen["peak_checked_out"] != limit:
        fail("cp3-peak", n=n, peak=seen["peak_waiting"], checked_out=seen["peak_checked_out"],
             size=burst["size"], overflow=burst["overflow"], limit=limit)


# --- CP4: overflow connections are closed on return --------------------------------------------


@pytest.mark.rule("CP4")
@pytest.mark.parametrize("burst", BURSTS.values(), ids=BURSTS)
def test_after_a_burst_the_pool_keeps_pool_size_connections(kata, db, burst):
    """After a burst the overflow connections are closed: pool_size stay open, idle in the pool."""
    seen = burst_through_the_pool(kata, db, **burst)

    raise_todo(seen["errors"])
    if seen["stuck"] or seen["errors"]:
        fail("cp4-burst", n=burst["requests"], stuck=seen["stuck"], failed=len(seen["errors"]))
    if (seen["idle_in_pool"], seen["server_connections"]) != (burst["size"], burst["size"]):
        fail("cp4-kept", n=burst["requests"], idle=seen["idle_in_pool"],
             server=seen["server_connections"], size=burst["size"])


# --- CP5: past the limit, wait pool_timeout, then sqlalchemy.exc.TimeoutError ------------------

BUSY_TIMEOUT = 0.05  # pool_timeout where a spec holds the only connection: a checkout gives up after it
# How long into a 5 s pool_timeout the held connection comes back: 2x BUSY_TIMEOUT, so a request
# that gives up after a time of its own (that one, say) answers 503 before it is back.
BACK_AFTER = 0.1


@pytest.mark.rule("CP5")
def test_a_request_past_the_limit_waits_pool_timeout_then_raises_sqlalchemys_timeout_error(
    kata, db
):
    """All connections out: a checkout waits pool_timeout, then raises sqlalchemy's TimeoutError."""
    engine = sync_engine(kata, db.sync_url, pool_size=1, max_overflow=0, pool_timeout=BUSY_TIMEOUT)
    try:
        with engine.connect():  # the spec holds the pool's only connection
            start = time.perf_counter()
            threads, _, errors = in_threads(1, lambda: kata.run_query(engine, "SELECT 1"))
            stuck = still_running(threads, timeout=3)
            waited = time.perf_counter() - start
        still_running(threads, timeout=3)  # the spec's connection is back: let it finish
    finally:
        engine.dispose()

    raise_todo(errors)
    if stuck:
        fail("cp5-sync-hangs", waited=waited, timeout=BUSY_TIMEOUT)
    if not errors:
        fail("cp5-sync-returned", waited=waited)
    if not isinstance(errors[0], sqlalchemy.exc.TimeoutError):
        fail("cp5-sync-raised", error=describe(errors[0]), timeout=BUSY_TIMEOUT)


async def answer_of(task, seconds: float):
    """The result of a run_query_or_503 task, with a deadline: (result, error, done)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None, None, False
    if task.exception() is not None:
        return None, task.exception(), True
    return task.result(), None, True


async def answer(kata, engine, sql: str, seconds: float):
    """run_query_or_503(engine, sql) with a deadline: (result, error, done)."""
    return await answer_of(asyncio.create_task(kata.run_query_or_503(engine, sql)), seconds)


@pytest.mark.rule("CP5")
@pytest.mark.asyncio
async def test_run_query_or_503_answers_503_only_while_no_connection_comes_free(kata, db):
    """503 when no connection came back within pool_timeout; 200 when one came back in time."""
    engine = async_engine(kata, db.async_url, pool_size=1, max_overflow=0, pool_timeout=BUSY_TIMEOUT)
    patient = async_engine(kata, db.async_url, pool_size=1, max_overflow=0, pool_timeout=5)
    n = random.randint(10, 99)
    try:
        async with engine.connect():  # the spec holds the pool's only connection
            busy, error, done = await answer(kata, engine, "SELECT 1", 3)
        raise_todo([error])
        if not done:
            fail("cp5-async-hangs", waited=3, timeout=BUSY_TIMEOUT)
        if error is not None:
            fail("cp5-wrong-except", error=f"{type(error).__module__}.{type(error).__name__}")
        if not (isinstance(busy, tuple) and busy[:1] == (503,)):
            fail("cp5-not-503", got=repr(busy))

        # The connection comes back BACK_AFTER s into a 5 s pool_timeout: the request gets it.
        held = await patient.connect()
        task = asyncio.create_task(kata.run_query_or_503(patient, f"SELECT {n}"))
        await asyncio.wait({task}, timeout=BACK_AFTER)  # one that answers before it is back ends this
        await held.close()
        late, error, done = await answer_of(task, 4)
    finally:
        await engine.dispose()
        await patient.dispose()
    if error is not None:
        raise_todo([error])
        fail("cp5-late-error", error=describe(error), back=BACK_AFTER)
    if late != (200, n):
        fail("cp5-gave-up-early", got=repr(late), n=n, back=BACK_AFTER)


@pytest.mark.rule("CP5")
@pytest.mark.asyncio
async def test_run_query_or_503_answers_200_for_a_slow_query_on_a_free_connection(kata, db):
    """pool_timeout bounds the wait for a connection, not the query: a slow query is not busy."""
    timeout, query = 0.02, 0.1  # a query of 5 x pool_timeout
    engine = async_engine(kata, db.async_url, pool_size=2, max_overflow=0, pool_timeout=timeout)
    n = random.randint(10, 99)
    try:
        # On a connection that was free all along: nothing waits for the pool.
        slow, error, done = await answer(kata, engine, f"SELECT {n} FROM pg_sleep({query})", 6)
    finally:
        await engine.dispose()
    raise_todo([error])
    if error is not None:
        fail("cp5-slow-error", error=describe(error), query=query, timeout=timeout)
    if not done:
        fail("cp5-async-hangs", waited=6, timeout=timeout)
    if slow != (200, n):
        fail("cp5-slow-is-not-busy", got=repr(slow), n=n, query=query, timeout=timeout)


@pytest.mark.rule("CP5")
@pytest.mark.asyncio
async def test_run_query_or_503_lets_every_other_error_propagate(kata, db):
    """(200, value) and the connection back; a broken query raises, it is not a busy database."""
    engine = async_engine(kata, db.async_url, pool_size=1, max_overflow=0, pool_timeout=BUSY_TIMEOUT)
    a, b = random.randint(10, 99), random.randint(100, 999)
    failing = None
    try:
        free, error, _done = await answer(kata, engine, f"SELECT {a} + {b}", 3)
        raise_todo([error])
        if error is not None:
            fail("cp5-free-error", error=describe(error))
        if free != (200, a + b):
            fail("cp5-free", sql=f"SELECT {a} + {b}", got=repr(free), expected=a + b)
        if engine.pool.checkedout():
            fail("cp5-kept")
        try:
            failing = repr(await asyncio.wait_for(kata.run_query_or_503(engine, "SELECT 1 / 0"), 3))
        except sqlalchemy.exc.DBAPIError:
            failing = "raised"
    finally:
        await engine.dispose()
    if failing != "raised":
        fail("cp5-every-error-is-busy", got=failing)


# --- CP6: the pool starts empty ----------------------------------------------------------------


@pytest.mark.rule("CP6")
@pytest.mark.asyncio
async def test_the_pool_starts_empty_and_fills_only_when_connections_are_needed(kata, db):
    """Creating engines opens no connection; warm_up holds pool_size at once, then leaves them."""
    size = 7  # not the default 5: a warm_up that opens 5 whatever the pool shows
    engine = sync_engine(kata, db.sync_url, pool_size=size)
    aengine = async_engine(kata, db.async_url)
    try:
        at_start = await asyncio.to_thread(db.open_connections)
        in_pools = engine.pool.checkedin() + aengine.pool.checkedin()
        await aengine.dispose()
        await asyncio.to_thread(kata.warm_up, engine)
        idle, out = engine.pool.checkedin(), engine.pool.checkedout()
        after = await asyncio.to_thread(connections_once_settled, db, size, engine.pool)
    finally:
        engine.dispose()
        await aengine.dispose()

    if at_start or in_pools:
        fail("cp6-connected-at-creation", at_start=at_start, in_pools=in_pools)
    if out:
        fail("cp6-left-out", out=out)
    if not after:
        fail("cp6-nothing-opened")
    if (idle, after) != (size, size):
        fail("cp6-wrong-count", size=size, idle=idle, server=after)


# --- CP7: database concurrency is capped by the pool -------------------------------------------


@pytest.mark.rule("CP7")
@pytest.mark.parametrize(
    "workers, pool_size, max_overflow, expected",
    [
        (8, 5, 10, 8),
        (15, 5, 10, 15),
        (40, 5, 10, 15),
        (100, 5, 10, 15),
        (40, 2, 3, 5),
        (1, 5, 10, 1),
        (40, 20, 30, 40),  # a pool larger than FastAPI's 40 threads: the threads decide
        (33, 10, 40, 33),
        (100, 20, 30, 50),
        (12, 3, 0, 3),
    ],
)
def test_max_concurrent_queries_is_the_smaller_of_workers_and_the_pool_limit(
    kata, workers, pool_size, max_overflow, expected
):
    """Queries at once = min(workers, pool_size + max_overflow)."""
    got = kata.max_concurrent_queries(workers, pool_size=pool_size, max_overflow=max_overflow)
    if got != expected:
        fail("cp7-formula", workers=workers, pool_size=pool_size, max_overflow=max_overflow,
             got=repr(got), expected=expected)


async def coroutines_at_the_gate(kata, db, n: int, options: dict, limit: int) -> dict:
    """n concurrent run_query_async calls on a make_async_engine(**options) engine."""
    engine = async_engine(kata, db.async_url, **options)
    watch = PoolWatch(engine)
    gate = await asyncio.to_thread(Gate, db)
    try:
        queries = asyncio.gather(
            *(kata.run_query_async(engine, WAIT_SQL) for _ in range(n)), return_exceptions=True
        )
        # Settled when every coroutine the pool did not lend to waits in its queue.
        settled = lambda: coroutines_blocked_in_the_pool(engine) == n - limit  # noqa: E731
        peak = await asyncio.to_thread(peak_of, gate.waiting, limit, lambda: not queries.done(), settled)
        await asyncio.to_thread(gate.open)
        done, _ = await asyncio.wait({queries}, timeout=6)
        if not done:
            queries.cancel()
            await asyncio.gather(queries, return_exceptions=True)
        errors = [r for r in queries.result() if isinstance(r, BaseException)] if done else []
    finally:
        await asyncio.to_thread(gate.close)
        await engine.dispose()
    if not done:
        fail("cp7-not-done", n=n)
    raise_todo(errors)
    if errors:
        fail("cp7-errors", failed=len(errors), n=n, error=describe(errors[0]))
    return {"peak": peak, "checked_out": watch.peak}


@pytest.mark.rule("CP7")
@pytest.mark.asyncio
async def test_forty_coroutines_never_run_more_than_fifteen_queries_at_once(kata, db):
    """Coroutines are cheap, connections are not: of 40 concurrent queries, 15 reach the server."""
    seen = await coroutines_at_the_gate(kata, db, 40, {}, 15)
    if seen["peak"] != 15 or seen["checked_out"] != 15:
        fail("cp7-coroutines", n=40, size=5, overflow=10, expected=15, **seen)


@pytest.mark.rule("CP7")
@pytest.mark.asyncio
async def test_with_a_pool_of_fifty_sixty_coroutines_run_fifty_queries_at_once(kata, db):
    """A pool larger than any thread limit: 60 coroutines, pool 10 + 40, and 50 at the database."""
    seen = await coroutines_at_the_gate(kata, db, 60, {"pool_size": 10, "max_overflow": 40}, 50)
    if seen["peak"] != 50 or seen["checked_out"] != 50:
        fail("cp7-coroutines", n=60, size=10, overflow=40, expected=50, **seen)


@pytest.mark.rule("CP7")
@pytest.mark.asyncio
async def test_sixty_def_requests_run_forty_queries_at_once_when_the_pool_has_fifty(kata, db):
    """FastAPI's `def` endpoints share 40 threads: with a pool of 20 + 30, the threads decide."""
    engine = sync_engine(kata, db.sync_url, pool_size=20, max_overflow=30)
    watch = PoolWatch(engine)
    gate = await asyncio.to_thread(Gate, db)
    limiter = anyio.to_thread.current_default_thread_limiter()
    threads = limiter.total_tokens  # 40, as FastAPI's
    try:
        requests = asyncio.gather(
            *(anyio.to_thread.run_sync(kata.run_query, engine, WAIT_SQL) for _ in range(60)),
            return_exceptions=True,
        )
        # Settled when every request without a thread waits for one.
        settled = lambda: requests_waiting_for_a_thread(limiter) == 60 - threads  # noqa: E731
        peak = await asyncio.to_thread(peak_of, gate.waiting, threads, lambda: not requests.done(), settled)
        await asyncio.to_thread(gate.open)
        done, _ = await asyncio.wait({requests}, timeout=6)
        errors = [r for r in requests.result() if isinstance(r, BaseException)] if done else []
    finally:
        await asyncio.to_thread(gate.close)
        await asyncio.to_thread(engine.dispose)
    if not done:
        fail("cp7-not-done", n=60)
    raise_todo(errors)
    if errors:
        fail("cp7-errors", failed=len(errors), n=60, error=describe(errors[0]))
    if peak != threads or watch.peak != threads:
        fail("cp7-threads", threads=threads, peak=peak, checked_out=watch.peak)


# --- CP8: pool_recycle replaces old connections ------------------------------------------------


class PoolClock:
    """The clock SQLAlchemy's pool reads a connection's age from, moved on at will.

    The pool stamps each connection with time.time() when it connects and, at each checkout,
    replaces one older than pool_recycle (sqlalchemy/pool/base.py). Moving that module's clock
    ages the connection by N s without the spec sleeping N s; nothing else reads it.
    """

    def __init__(self):
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead

    def __getattr__(self, name):  # anything else of the time module, as it is
        return getattr(time, name)


@pytest.fixture
def pool_clock(monkeypatch):
    import sqlalchemy.pool.base

    clock = PoolClock()
    monkeypatch.setattr(sqlalchemy.pool.base, "time", clock)
    return clock


@pytest.mark.rule("CP8")
@pytest.mark.parametrize("recycle", [60, 1800, 7200])
def test_pool_recycle_replaces_a_live_connection_older_than_the_limit(kata, db, recycle, pool_clock):
    """pool_recycle=N: a connection older than N s is closed and replaced at its next checkout."""
    engine = sync_engine(kata, db.sync_url, pool_recycle=recycle)
    try:
        first = kata.run_query(engine, PID_SQL)
        pool_clock.ahead = recycle * 0.9  # younger than pool_recycle still
        soon = kata.run_query(engine, PID_SQL)
        pool_clock.ahead = recycle * 1.1  # older than pool_recycle now; the server never dropped it
        later = kata.run_query(engine, PID_SQL)
        old_still_open = backend_alive(db, first)
    finally:
        engine.dispose()

    if soon != first:
        fail("cp8-young-replaced", first=first, soon=soon, recycle=recycle, age=round(recycle * 0.9))
    if later == first:
        fail("cp8-old-reused", first=first, age=round(recycle * 1.1), recycle=recycle)
    if old_still_open:
        fail("cp8-old-left-open", first=first, recycle=recycle)
