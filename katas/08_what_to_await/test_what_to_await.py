"""Specs of kata 08: what to await (rules AE5, SM1; EL3, EL4, EL5 seen with a database).
Do not edit: edit app.py.

add_comment and comments_of get an AsyncSession from the spec, on the spec's own copy of the
seeded blog database (kata_blog/seed.py); the spec then reads the database to see what really
happened. create_app is served through httpx.ASGITransport inside the spec's own event loop, and
the spec records every SQL statement any engine runs (its driver, and whether the event loop was
running in the thread that sent it), so "it blocked the loop" is counted, not timed.
"""

import asyncio
import gc
import hashlib
import inspect
import re
import threading
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import sqlalchemy.exc
from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm.exc import DetachedInstanceError

from kata_blog import seed
from kata_tools.loader import display
from kata_tools.probes import BlockingSpy, Heartbeat, loop_running_here

pytestmark = pytest.mark.asyncio

ANSWER_WITHIN = 8.0  # seconds a request may take before the spec calls it hung
MISSING = 999  # no post has this id
NO_SERVER = "postgresql://kata@/never_connected?host=/nonexistent"  # for a spec with no query


@pytest.fixture
def kata(kata_module):
    return kata_module("app.py")


@pytest.fixture
def blog_db(seeded_db):
    """The spec's own copy of the seeded blog database (its teardown checks for leaked connections)."""
    return seeded_db


@pytest_asyncio.fixture
async def sessions(blog_db):
    """Sessions on the spec's database, with the default expire_on_commit=True on purpose."""
    engine = create_async_engine(blog_db.async_url)
    try:
        yield async_sessionmaker(engine)
    finally:
        await engine.dispose()


async def stored(sessions, sql: str, **params) -> list:
    """What the database holds now, read through a session of its own."""
    async with sessions() as check:
        return list((await check.execute(text(sql), params)).all())


# --- calling the learner's coroutines ----------------------------------------------------------


@dataclass
class Call:
    """What one awaited call of the learner's code did."""

    result: object = None
    error: str = ""  # "TypeError: ..." when it raised
    error_type: type | None = None
    where: str = ""  # the learner's line that raised
    never_awaited: list = field(default_factory=list)  # coroutines created and never awaited


def learner_line(kata, error: BaseException) -> str:
    here = Path(kata.__file__).resolve()
    lines = [
        f"{display(here)}:{frame.tb_lineno}"
        for frame in _frames(error.__traceback__)
        if Path(frame.tb_frame.f_code.co_filename).resolve() == here
    ]
    return lines[-1] if lines else ""


def _frames(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


async def call_learner(kata, function, *args) -> Call:
    """Await function(*args); record its result or error and every coroutine it never awaited."""
    call = Call()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call.result = await function(*args)
        except NotImplementedError:
            raise  # a TODO: the kata plugin shows it as one
        except Exception as e:
            first_line = str(e).splitlines()[0] if str(e) else ""
            call.error = f"{type(e).__name__}: {first_line}"
            call.error_type = type(e)
            call.where = learner_line(kata, e)
        if call.error:
            gc.collect()  # the error's frames may hold a coroutine never awaited: warn it here
    call.never_awaited = never_awaited_in(caught)
    return call


def never_awaited_in(caught) -> list:
    """The names of the coroutines that Python warned were never awaited."""
    found = (re.search(r"coroutine '([^']+)' was never awaited", str(w.message)) for w in caught)
    return [match.group(1) for match in found if match]


def never_awaited_message(call, what: str) -> str:
    names = ", ".join(sorted(set(call.never_awaited)))
    return (
        f"{what} called {names} without await. Calling an async method only creates a "
        f"coroutine: nothing ran, and Python warned 'coroutine ... was never awaited'. Await "
        f"every call that talks to the database: commit, refresh, execute, scalars, get (AE5)."
    )


def error_message(call: Call, what: str) -> str:
    at = f" at {call.where}" if call.where else ""
    if call.error_type is TypeError and "await" in call.error:
        return (
            f"{what} raised {call.error}{at}. db.add(obj) is a plain call: it only stages the "
            f"object in the session (no I/O) and returns None, and None cannot be awaited. "
            f"Call it without await; commit is what sends it (AE5)."
        )
    if call.error_type is AttributeError and "coroutine" in call.error:
        return (
            f"{what} raised {call.error}{at}: a method of the session was called without await, "
            f"so you got a coroutine instead of its result. `(await db.scalars(stmt)).all()` (AE5)."
        )
    return f"{what} raised {call.error}{at}. Read the README's rules for what it must do (AE5)."


# --- serving the learner's app -----------------------------------------------------------------


@dataclass
class Served:
    """An httpx client on the learner's app, and what the app left behind."""

    client: httpx.AsyncClient
    never_awaited: list = field(default_factory=list)  # coroutines created and never awaited


@asynccontextmanager
async def serving(kata, url: str):
    """Serve create_app(url) to an httpx client; dispose the app's engine afterwards."""
    try:
        app = kata.create_app(url)
    except NotImplementedError:
        raise
    except Exception as e:
        hint = ""
        if "psycopg" in str(e) or "is not async" in str(e):
            hint = (
                " A postgresql:// URL names no async driver: an async engine needs "
                "postgresql+asyncpg://, switched from the same DATABASE_URL (SM1)."
            )
        pytest.fail(
            f"create_app(DATABASE_URL) raised {type(e).__name__}: {str(e).splitlines()[0]}."
            + hint,
            pytrace=False,
        )
    engine = getattr(app.state, "engine", None)
    if engine is None:
        pytest.fail(
            "create_app must keep its engine on app.state.engine, so that whoever stops the app "
            "(here, the spec) can dispose it and close its connections.",
            pytrace=False,
        )
    transport = httpx.ASGITransport(app=app)  # app exceptions reach the spec as raised
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                served = Served(client)
                yield served
            gc.collect()  # a coroutine never awaited warns when it is collected: collect it here
        served.never_awaited = never_awaited_in(caught)
    finally:
        disposed = engine.dispose()
        if inspect.isawaitable(disposed):
            await disposed


@dataclass
class Answer:
    status: int | None = None
    body: object = None
    error: str = ""


async def send(client, method: str, url: str, **kwargs) -> Answer:
    """One request; an exception the app raised (a real server would answer 500) is recorded."""
    try:
        response = await asyncio.wait_for(client.request(method, url, **kwargs), ANSWER_WITHIN)
    except NotImplementedError:
        raise
    except (TimeoutError, asyncio.TimeoutError):
        return Answer(error=f"no answer within {ANSWER_WITHIN} s")
    except Exception as e:
        first_line = str(e).splitlines()[0] if str(e) else ""
        return Answer(status=500, error=f"{type(e).__name__}: {first_line}")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Answer(status=response.status_code, body=body)


class Statements:
    """Every SQL statement any engine sends while it is open: driver, thread, loop running there."""

    def __init__(self, marker: str = ""):
        self.marker = marker
        self.current = self.peak = 0
        self.sent = []  # (driver, loop running in the sending thread?)
        self._lock = threading.Lock()
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, *args):
        with self._lock:
            self.sent.append((conn.dialect.driver, loop_running_here()))
            if self.marker in statement:
                self.current += 1
                self.peak = max(self.peak, self.current)

    def _after(self, conn, cursor, statement, *args):
        if self.marker in statement:
            with self._lock:
                self.current -= 1

    def close(self):
        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)

    @property
    def drivers(self) -> set:
        return {driver for driver, _ in self.sent}

    def blocking_on_loop(self) -> int:
        return sum(1 for driver, on_loop in self.sent if on_loop and driver != "asyncpg")


# --- AE5: add is a plain call; commit, refresh, get, scalars, execute are awaited ---------------


@pytest.mark.rule("AE5")
async def test_add_comment_commits_the_new_comment_to_the_database(kata, sessions):
    """add_comment stages with db.add and awaits db.commit: afterwards the comment is stored."""
    async with sessions() as db:
        call = await call_learner(kata, kata.add_comment, db, 1, "Awaited, so committed.")
    rows = await stored(
        sessions, "SELECT post_id FROM comments WHERE content = 'Awaited, so committed.'"
    )

    assert not call.never_awaited, never_awaited_message(call, "add_comment")
    assert not call.error, error_message(call, "add_comment(db, 1, ...)")
    assert rows == [(1,)], (
        f"add_comment(db, 1, ...) returned, but the database holds {len(rows)} such comment(s) "
        f"on post 1: nothing was committed. db.add only stages; `await db.commit()` writes (AE5)."
    )


@pytest.mark.rule("AE5")
async def test_add_comment_returns_the_comment_refreshed_and_readable(kata, sessions):
    """Commit expires the comment; add_comment awaits db.refresh, so it reads without a query."""
    async with sessions() as db:
        call = await call_learner(kata, kata.add_comment, db, 2, "Refreshed after commit.")
        comment, read, problem = call.result, None, ""
        if not call.error and not call.never_awaited:
            try:
                read = (comment.id, comment.post_id, comment.content)
            except (sqlalchemy.exc.MissingGreenlet, DetachedInstanceError) as e:
                problem = type(e).__name__
            except AttributeError as e:
                problem = f"AttributeError: {e}"
    rows = await stored(
        sessions, "SELECT id FROM comments WHERE content = 'Refreshed after commit.'"
    )

    assert not call.never_awaited, never_awaited_message(call, "add_comment")
    assert not call.error, error_message(call, "add_comment(db, 2, ...)")
    assert not problem, (
        f"Reading comment.id on what add_comment returned raised {problem}: commit expired the "
        f"object (expire_on_commit=True), and reloading it needs a query that a plain attribute "
        f"read cannot await. `await db.refresh(comment)` after the commit (AE5)."
    )
    assert read is not None and rows and read == (rows[0][0], 2, "Refreshed after commit."), (
        f"add_comment(db, 2, 'Refreshed after commit.') returned {comment!r} reading as {read!r}; "
        f"expected the stored comment (id {rows[0][0] if rows else '?'}, post 2, that "
        f"content) (AE5)."
    )


@pytest.mark.rule("AE5")
async def test_add_comment_on_a_missing_post_raises_post_not_found_and_writes_nothing(
    kata, sessions
):
    """add_comment awaits db.get: a missing post raises PostNotFound before anything is staged."""
    async with sessions() as db:
        call = await call_learner(kata, kata.add_comment, db, MISSING, "Nobody will read this.")
    rows = await stored(
        sessions, "SELECT id FROM comments WHERE content = 'Nobody will read this.'"
    )

    assert not call.never_awaited, never_awaited_message(call, f"add_comment(db, {MISSING}, ...)")
    assert call.error_type is kata.PostNotFound, (
        f"add_comment(db, {MISSING}, ...) for a post that does not exist "
        f"{'raised ' + call.error if call.error else 'returned ' + repr(call.result)}; it must "
        f"raise PostNotFound. `await db.get(Post, post_id)` is None when there is no such "
        f"post (AE5)."
    )
    assert not rows, f"add_comment wrote {len(rows)} comment(s) for a missing post (AE5)."


@pytest.mark.rule("AE5")
async def test_comments_of_returns_the_posts_comments_oldest_first(kata, sessions):
    """comments_of awaits db.scalars(select(...)) and returns the comments in id order."""
    async with sessions() as db:
        call = await call_learner(kata, kata.comments_of, db, 1)
        try:
            contents = [comment.content for comment in call.result or []]
        except TypeError:
            contents = call.result
        empty = await call_learner(kata, kata.comments_of, db, 5) if not call.error else Call()

    assert not (call.never_awaited or empty.never_awaited), never_awaited_message(
        call if call.never_awaited else empty, "comments_of"
    )
    assert not call.error, error_message(call, "comments_of(db, 1)")
    assert contents == seed.comments_of(1), (
        f"comments_of(db, 1) gave {contents!r}; post 1's comments oldest first are "
        f"{seed.comments_of(1)!r} (AE5)."
    )
    assert list(empty.result or []) == [] and not empty.error, (
        f"comments_of(db, 5) gave {empty.result!r} {empty.error}; post 5 has no comments: [] (AE5)."
    )


@pytest.mark.rule("AE5")
async def test_the_comment_endpoints_create_list_and_refuse_a_missing_post(kata, blog_db):
    """POST .../comments answers 201 with the new comment, GET lists it, a missing post is 404."""
    new = "Through the whole async stack."
    async with serving(kata, blog_db.plain_url) as served:
        client = served.client
        created = await send(client, "POST", "/posts/4/comments", json={"content": new})
        listed = await send(client, "GET", "/posts/4/comments")
        missing = await send(client, "POST", f"/posts/{MISSING}/comments", json={"content": new})

    assert not served.never_awaited, never_awaited_message(served, "The comment endpoints")
    assert created.status == 201 and isinstance(created.body, dict), (
        f"POST /posts/4/comments answered {created.status} {created.error or created.body!r}; "
        f"expected 201 with the new comment (AE5)."
    )
    assert isinstance(created.body.get("id"), int) and created.body.get("content") == new, (
        f"POST /posts/4/comments answered {created.body!r}; expected its id and content (AE5)."
    )
    contents = [c.get("content") for c in listed.body] if isinstance(listed.body, list) else None
    assert listed.status == 200 and contents == seed.comments_of(4) + [new], (
        f"GET /posts/4/comments answered {listed.status} {listed.error or listed.body!r}; "
        f"expected post 4's comments oldest first, the new one last (AE5)."
    )
    assert missing.status == 404, (
        f"POST /posts/{MISSING}/comments (no such post) answered {missing.status} "
        f"{missing.error or missing.body!r}; catch PostNotFound and answer 404 (AE5)."
    )


# --- SM1: the whole stack switched, or the loop stalls -----------------------------------------


@pytest.mark.rule("SM1", "EL3")
async def test_five_slow_queries_from_five_requests_run_at_the_same_time(kata, blog_db):
    """Five requests each waiting 0.3 s on the database overlap: five queries in flight at once."""
    statements = Statements(marker="pg_sleep")
    try:
        async with serving(kata, blog_db.plain_url) as served:
            async with Heartbeat(interval=0.01) as heart:
                answers = await asyncio.gather(
                    *(send(served.client, "GET", "/slow", params={"seconds": 0.3}) for _ in "12345")
                )
    finally:
        statements.close()

    assert not served.never_awaited, never_awaited_message(served, "GET /slow")
    failed = [a for a in answers if a.status != 200]
    assert not failed, (
        f"{len(failed)} of 5 GET /slow requests failed: {failed[0].status} "
        f"{failed[0].error or failed[0].body!r} (SM1)."
    )
    assert statements.peak == 5, (
        f"Five GET /slow?seconds=0.3 requests sent at once had their queries in flight "
        f"{statements.peak} at a time at most, and the event loop stalled for "
        f"{heart.max_gap:.2f} s: an "
        f"async def endpoint ran a query through a synchronous session, which blocks the loop. "
        f"Switch the whole stack: asyncpg, create_async_engine, async_sessionmaker, "
        f"AsyncSession, `await db.execute(...)` (SM1)."
    )


@pytest.mark.rule("SM1", "EL4")
async def test_every_query_of_the_app_goes_through_asyncpg(kata, blog_db):
    """Going async switches the driver too: no query goes through psycopg2."""
    statements = Statements()
    try:
        async with serving(kata, blog_db.plain_url) as served:
            answer = await send(served.client, "GET", "/slow", params={"seconds": 0})
    finally:
        statements.close()

    assert answer.status == 200, (
        f"GET /slow?seconds=0 answered {answer.status} {answer.error or answer.body!r} (SM1)."
    )
    assert statements.sent and statements.drivers == {"asyncpg"}, (
        f"The app's queries went through {sorted(statements.drivers) or 'no driver at all'} "
        f"({statements.blocking_on_loop()} of them on the event loop's own thread). This kata "
        f"switches the whole stack at once: the URL to postgresql+asyncpg://, create_engine to "
        f"create_async_engine, sessionmaker to async_sessionmaker, Session to AsyncSession (SM1)."
    )


# --- EL5: CPU work is not awaited, and still must leave the loop -------------------------------


@pytest.mark.rule("EL5")
async def test_hashing_a_password_runs_on_a_worker_thread_not_on_the_loop(kata, monkeypatch):
    """Hashing needs no await (no I/O), but its CPU time must not hold the loop: use a thread."""
    expected = kata.hash_password("correct horse").hex()
    spy = BlockingSpy("hashlib.pbkdf2_hmac")
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", spy.wrap(hashlib.pbkdf2_hmac))

    async with serving(kata, NO_SERVER) as served:
        async with Heartbeat(interval=0.01) as heart:
            answer = await send(
                served.client, "POST", "/password-hash", json={"password": "correct horse"}
            )

    assert answer.status == 200 and answer.body == {"hash": expected}, (
        f"POST /password-hash answered {answer.status} {answer.error or answer.body!r}; expected "
        f"200 with {{'hash': hash_password(password).hex()}} (EL5)."
    )
    assert spy.calls >= 1, (
        "POST /password-hash answered without calling hash_password; hash with the given "
        "hash_password (EL5)."
    )
    assert spy.calls_on_loop == 0, (
        f"hash_password ran on the event loop's thread and held it for {heart.max_gap:.2f} s: "
        f"every other request waited. It needs no await (no I/O), but CPU work must leave the "
        f"loop: `await asyncio.to_thread(hash_password, ...)` or run_in_threadpool (EL5)."
    )
