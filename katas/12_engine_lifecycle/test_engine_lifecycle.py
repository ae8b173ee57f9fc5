"""Specs of kata 12: the engine's life (rules EN1, EN2). Do not edit: edit app.py.

Your app runs with its lifespan around it, as a server runs it (httpx.ASGITransport inside the
app's lifespan_context), on fresh copies of the seeded blog database; some specs serve it on an
event loop of its own, twice, as a test client or a restarted worker would. The checks are what
PostgreSQL sees (pg_stat_activity: which connections are still open after shutdown) and what a
client gets after the database has dropped every connection of the pool (pg_terminate_backend).
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
import warnings
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from kata_blog import seed
from kata_tools.i18n import catalog
from kata_tools.postgres.plugin import SeededDatabase

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

FILE = "app.py"
POSTS = [1, 2, 3, 4]  # requested at once: the pool opens several connections
GONE_WITHIN = 2.0  # a closed connection leaves pg_stat_activity within this (as the leak check)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def kata(kata_module, monkeypatch, seeded_db):
    """app.py, imported fresh with DATABASE_URL set, as a deployment would have it."""
    monkeypatch.setenv("DATABASE_URL", seeded_db.plain_url)
    return kata_module(FILE, fresh=True)


@pytest.fixture
def other_db(database):
    """A second copy of the seeded blog database, for a second app."""
    db = SeededDatabase(database.create_test_database(), database)
    yield db
    database.drop(db.name)


class Spectator:
    """The spec's own connections to one database, off the app's pool."""

    def __init__(self, db: SeededDatabase):
        self.name = db.name
        self.engine = create_async_engine(db.async_url, poolclass=NullPool)

    async def scalar(self, sql: str, **params):
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def write(self, sql: str, **params) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(sql), params)

    async def backends(self) -> int:
        """Connections to this database other than the spectator's own."""
        return await self.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )

    async def backends_after(self, seconds: float = GONE_WITHIN) -> int:
        stop = time.monotonic() + seconds
        left = await self.backends()
        while left and time.monotonic() < stop:
            await asyncio.sleep(0.05)
            left = await self.backends()
        return left

    async def terminate_all(self) -> int:
        """Drop every other connection to this database, as a restart or failover would."""
        killed = await self.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await self.backends_after()
        return killed


@pytest_asyncio.fixture
async def spectator(seeded_db):
    spectator = Spectator(seeded_db)
    yield spectator
    # An engine nobody disposed keeps connections (maybe of a loop that is gone): drop them, and
    # let the garbage collector take their objects now, not in some later spec.
    await spectator.terminate_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    await spectator.engine.dispose()


# --- serving ------------------------------------------------------------------------------------


class Served:
    """What one run of the server saw: the engine on app.state, and the replies."""

    def __init__(self):
        self.engine = None
        self.replies: list = []  # (status, json) or an exception the app let escape


@asynccontextmanager
async def serve(app, served: Served):
    """The app's lifespan around an httpx client, as a server runs it (ASGITransport alone does not)."""
    async with app.router.lifespan_context(app):
        served.engine = getattr(app.state, "engine", None)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def get_posts(client, served: Served, ids=POSTS) -> list:
    replies = await asyncio.gather(*(client.get(f"/posts/{i}") for i in ids), return_exceptions=True)
    out = [r if isinstance(r, BaseException) else (r.status_code, r.json()) for r in replies]
    served.replies.extend(out)
    return out


def expected(post_id: int, title: str | None = None) -> tuple:
    return (200, {"id": post_id, "title": title or seed.POSTS[post_id][0]})


def short(error: BaseException) -> str:
    """An exception's first line, with object reprs (<Task pending ... >) folded to <...>."""
    text = str(error).splitlines()[0] if str(error) else ""
    folded = re.sub(r"<[^<>]*>", "\x00", text)
    while folded != text:
        text, folded = folded, re.sub(r"<[^<>]*>", "\x00", folded)
    return text.replace("\x00", "<...>")[:200]


def first_problem(replies: list, ids=POSTS) -> str | None:
    for post_id, reply in zip(ids, replies):
        if isinstance(reply, BaseException):
            return f"{type(reply).__name__}: {short(reply)}"
        if reply != expected(post_id):
            return MSG("answered", post_id=post_id, status=reply[0], body=str(reply[1])[:120])
    return None


def kept_in_pool(engine) -> int:
    """Connections idle in the engine's pool (0 for a pool that keeps none, as NullPool)."""
    if not isinstance(engine, AsyncEngine):
        return 0
    return getattr(engine.sync_engine.pool, "checkedin", lambda: 0)()


def settling(kept: int) -> float:
    """How long the spec lets closed connections leave pg_stat_activity after a shutdown: none
    when the app's pool still keeps some (they are open and stay so: nothing is closing them)."""
    return 0.0 if kept else GONE_WITHIN


def require_engine(served: Served) -> AsyncEngine:
    engine = served.engine
    if not isinstance(engine, AsyncEngine):
        pytest.fail(MSG("no-engine-on-state", kind=type(engine).__name__), pytrace=False)
    return engine


async def serve_once(app) -> Served:
    """One whole run of the server: start, four requests at once, shut down."""
    served = Served()
    async with serve(app, served) as client:
        await get_posts(client, served)
    return served


def serve_on_a_new_loop(app) -> Served:
    """One whole run of the server on an event loop of its own (in this thread), as a test
    client, a restarted worker or a second test would run it."""
    with warnings.catch_warnings(record=True):  # a loop-bound connection dying must not warn later
        warnings.simplefilter("always")
        served = asyncio.run(serve_once(app))
        gc.collect()
    return served


# --- EN1: born in the lifespan, kept on app.state, disposed at shutdown ----------------------------


@pytest.mark.rule("EN1")
async def test_each_app_works_on_the_database_it_was_made_for(kata, seeded_db, other_db):
    """Two apps at once, on two databases: each answers from its own, through app.state.engine."""
    other = Spectator(other_db)
    try:
        await other.write("UPDATE posts SET title = 'Only in the second' WHERE id = 1")
    finally:
        await other.engine.dispose()
    first, second = kata.create_app(seeded_db.plain_url), kata.create_app(other_db.plain_url)
    served_first, served_second = Served(), Served()
    async with serve(first, served_first) as a, serve(second, served_second) as b:
        replies = await asyncio.gather(get_posts(a, served_first, [1]), get_posts(b, served_second, [1]))
    for served, db in ((served_first, seeded_db), (served_second, other_db)):
        engine = require_engine(served)
        assert engine.url.database == db.name, MSG(
            "wrong-database", database=engine.url.database, expected=db.name
        )
    for served in (served_first, served_second):  # an engine the app did not dispose: not this spec's point
        if isinstance(served.engine, AsyncEngine):
            await served.engine.dispose()
    got = [r[0] for r in replies]
    want = [expected(1), expected(1, "Only in the second")]
    assert got == want, MSG("crossed-apps", got=got, want=want)


@pytest.mark.rule("EN1")
async def test_after_shutdown_no_connection_of_the_app_is_left_in_postgresql(kata, seeded_db, spectator):
    """Once the lifespan has ended, PostgreSQL holds no connection of the app."""
    app = kata.create_app(seeded_db.plain_url)
    served = await serve_once(app)
    problem = first_problem(served.replies)
    assert problem is None, MSG("run-failed", run=MSG("run-the-run"), problem=problem)
    engine = require_engine(served)
    opened = kept_in_pool(engine)
    left = await spectator.backends_after(settling(opened))
    assert left == 0, MSG("left-after-shutdown", left=left, pooled=opened)


@pytest.mark.rule("EN1")
async def test_the_app_serves_again_after_a_restart_on_a_new_event_loop(kata, seeded_db, spectator):
    """Started, stopped, started again on a new event loop: the second run answers like the first."""
    app = kata.create_app(seeded_db.plain_url)
    first = await asyncio.to_thread(serve_on_a_new_loop, app)
    problem = first_problem(first.replies)
    assert problem is None, MSG("run-failed", run=MSG("run-the-first-run"), problem=problem)
    # The first loop is closed: nothing can close these now.
    left = await spectator.backends_after(settling(kept_in_pool(first.engine)))
    second = await asyncio.to_thread(serve_on_a_new_loop, app)
    problem = first_problem(second.replies)
    one_engine = isinstance(first.engine, AsyncEngine) and first.engine is second.engine
    # Engines the app did not dispose hold connections of closed loops: drop them here, quietly,
    # so what fails this spec is the cause below, not the leak they would report when freed.
    del app, first, second
    await spectator.terminate_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
    if problem is not None and one_engine:
        pytest.fail(MSG("one-engine-two-loops", problem=problem, left=left), pytrace=False)
    assert problem is None, MSG("second-run-failed", problem=problem)
    assert left == 0, MSG("first-loop-left", left=left)


# --- EN2: a connection the database dropped is replaced, not handed out ------------------------


@pytest.mark.rule("EN2")
@pytest.mark.parametrize("rounds", [1, 2])
async def test_requests_after_the_database_dropped_every_connection_succeed(
    kata, seeded_db, spectator, rounds
):
    """The database drops the pool's connections (pg_terminate_backend); the next requests still
    answer 200, every time it happens."""
    app = kata.create_app(seeded_db.plain_url)
    served = Served()
    async with serve(app, served) as client:
        warm = await get_posts(client, served)
        problem = first_problem(warm)
        assert problem is None, MSG("run-failed", run=MSG("run-the-first-requests"), problem=problem)
        for _ in range(rounds):
            killed = await spectator.terminate_all()
            after = await get_posts(client, served)
            failed = [r for r in after if isinstance(r, BaseException) or r[0] != 200]
            assert not failed, MSG(
                "dropped-connection-lent",
                killed=killed,
                failed=len(failed),
                total=len(after),
                problem=first_problem(after),
            )
    if isinstance(served.engine, AsyncEngine):  # an engine the app did not dispose: EN1's point, not this spec's
        await served.engine.dispose()
