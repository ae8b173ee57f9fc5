"""Specs of kata 10: one session per task (rules SS1, SS2). Do not edit: edit dashboard.py.

Each spec gets its own copy of the seeded blog database and its own engine and session factory,
which it hands to your code. The checks count what really happened, in PostgreSQL and in the
pool: how many of the dashboard's statements waited in the database at the same moment (a lock
the spec holds makes each one wait there, visible in pg_stat_activity, until the spec lets go),
which session sent each statement, and how many connections were left checked out. For the two
writes of clear_comments, PostgreSQL itself says which transaction committed each (triggers the
spec adds log txid_current() and pg_backend_pid() inside each write), and a trigger that makes one
write fail shows whether the other was saved without it. No stopwatch.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from kata_blog import seed
from kata_tools.attempts import attempt
from kata_tools.i18n import catalog

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

FILE = "dashboard.py"
QUERIES = 3  # a dashboard's independent queries: title, comment count, tags
QUIET = 1.5  # the count of waiting statements is final once it has not grown for this long
# ... or once nothing but the lock can move it for this long (see stalled() below)
STALLED = 0.2
LOCKED_LIMIT = 5.0  # the spec lets go of its lock after this long whatever it saw


def expected_page(post_id: int) -> dict:
    title = seed.POSTS[post_id][0]
    return {"title": title, "comments": len(seed.comments_of(post_id)), "tags": sorted(seed.tags_of(post_id))}


# --- the spec's engine and session factory, with a record of every session ----------------------


class Recorder:
    """Every session the factory made, and which of them sent each statement (SQLAlchemy events)."""

    def __init__(self, engine):
        self.sessions: list[AsyncSession] = []
        self.statements: list[tuple[int | None, str]] = []  # (session number, SQL)
        self._of_connection: dict = {}  # the Connection a session's transaction runs on -> number
        recorder = self

        class RecordedSession(Session):
            pass

        class RecordedAsyncSession(AsyncSession):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.sync_session.info["number"] = len(recorder.sessions) + 1
                recorder.sessions.append(self)

        @event.listens_for(RecordedSession, "after_begin")
        def _began(session, transaction, connection):
            recorder._of_connection[connection] = session.info.get("number")

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _sent(connection, cursor, statement, *args):
            recorder.statements.append((recorder._of_connection.get(connection), statement))

        self.factory = async_sessionmaker(
            bind=engine,
            class_=RecordedAsyncSession,
            sync_session_class=RecordedSession,
            expire_on_commit=False,
        )

    def sessions_of(self, fragment: str) -> list[int | None]:
        """The session numbers of the statements whose SQL contains `fragment`."""
        return [n for n, sql in self.statements if fragment.lower() in sql.lower()]

    def dashboard_sessions(self) -> list[int | None]:
        return (
            self.sessions_of("FROM posts")
            + self.sessions_of("FROM comments")
            + self.sessions_of("FROM tags")
        )


@pytest_asyncio.fixture
async def engine(seeded_db):
    engine = create_async_engine(
        seeded_db.async_url,
        pool_size=5,
        max_overflow=10,
        pool_timeout=3,  # a session that is never closed starves the pool: fail fast, not in 30 s
    )
    async with engine.begin() as conn:  # the audit log's table (the model in dashboard.py)
        await conn.execute(
            text(
                "CREATE TABLE audit_entries (id serial PRIMARY KEY, post_id integer NOT NULL, "
                "action varchar(50) NOT NULL)"
            )
        )
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def recorder(engine):
    recorder = Recorder(engine)
    yield recorder
    for session in recorder.sessions:  # a session left open would hold its connection past the spec
        await close_quietly(session)


async def close_quietly(session: AsyncSession) -> None:
    """Close a session the learner's code may have left mid-statement (two tasks on one session):
    wait for the statement in progress to end, and drop the connection if it never does."""
    for _ in range(20):
        try:
            await session.close()
            return
        except Exception:  # "another operation is in progress", IllegalStateChangeError
            await asyncio.sleep(0.05)
    try:
        await session.invalidate()
    except Exception:
        pass


@pytest.fixture
def kata(kata_module):
    return kata_module(FILE)


@pytest_asyncio.fixture
async def spectator(seeded_db):
    """The spec's own connections, off the learner's pool: one to count, one to hold locks."""
    engine = create_async_engine(seeded_db.async_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


async def warm_pool(engine, n: int = QUERIES) -> None:
    """Open n pool connections at once and give them back: a warm pool, as a running server has."""
    connections = [await engine.connect() for _ in range(n)]
    for connection in connections:
        await connection.close()


def checked_out(engine) -> int:
    return engine.sync_engine.pool.checkedout()


async def committed(spectator, sql: str, **params) -> int:
    async with spectator.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


def client_for(app, raise_app_exceptions: bool = False) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def within(seconds: float, awaitable, what: str, rule: str):
    """Await with a deadline: a hang fails this spec with its likely cause, not a bare timeout."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        pytest.fail(MSG("hung", what=what, seconds=seconds, rule=rule), pytrace=False)


# --- the witness: statements waiting in PostgreSQL at the same moment ----------------------------

# The statements of the learner's connections at this moment: waiting at the spec's lock, and
# running otherwise (the locker is idle in its transaction; the counter is left out).
ACTIVITY = text(
    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), "
    "count(*) FILTER (WHERE wait_event_type IS DISTINCT FROM 'Lock') "
    "FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND state = 'active'"
)


def loop_is_idle() -> bool:
    """Nothing on this event loop is due: no callback ready and no timer set (a sleep, a connect
    or pool timeout). asyncio keeps both in attributes of its loop; where a loop has other ones,
    this says no, and the QUIET rule alone decides."""
    loop = asyncio.get_running_loop()
    ready, timers = getattr(loop, "_ready", None), getattr(loop, "_scheduled", None)
    if ready is None or timers is None:
        return False
    return not ready and all(timer.cancelled() for timer in timers)


async def count_waiting_statements(spectator, run) -> tuple[int, object]:
    """Run `run()` while the spec holds a lock on the blog's tables: every query of it waits in
    PostgreSQL until the lock goes. Returns (most statements waiting at once, the outcome of run).

    The count is final when it reaches QUERIES, or when it has not grown for QUIET seconds, or
    sooner when the run is stalled: every statement it sent waits at the lock, no other one runs,
    and the event loop has nothing else due, for STALLED seconds in a row. Then only the lock can
    move it (one session's statements queue behind the first one; a task not started yet waits
    for the one before it), so waiting longer would count the same."""
    async with spectator.connect() as locker, spectator.connect() as counter:
        await counter.execution_options(isolation_level="AUTOCOMMIT")
        await locker.execute(text("LOCK TABLE posts, comments, tags, post_tags IN ACCESS EXCLUSIVE MODE"))
        task = asyncio.create_task(attempt(run))
        peak, last_growth, start = 0, None, time.monotonic()
        stalled_since, stalled_polls = None, 0
        try:
            while not task.done():
                waiting, running = (await counter.execute(ACTIVITY)).one()
                now = time.monotonic()
                if waiting > peak:
                    peak, last_growth = waiting, now
                if waiting and not running and loop_is_idle():
                    stalled_since = stalled_since or now
                    stalled_polls += 1
                else:
                    stalled_since, stalled_polls = None, 0
                if (
                    peak >= QUERIES
                    or (last_growth is not None and now - last_growth > QUIET)
                    # several polls as well as the time: each poll lets the loop run once more
                    or (stalled_since is not None and stalled_polls >= 5 and now - stalled_since >= STALLED)
                    or now - start > LOCKED_LIMIT
                ):
                    break
                await asyncio.sleep(0.01)
        finally:
            await locker.rollback()  # lets go of the lock: the waiting statements run now
        outcome = await within(10, task, "load_dashboard", "SS1")
    return peak, outcome


# --- SS1: one session per task ------------------------------------------------------------------


@pytest.mark.rule("SS1")
@pytest.mark.parametrize("post_id", [1, 4])
async def test_the_three_queries_of_a_dashboard_wait_in_postgresql_at_the_same_time(
    kata, engine, recorder, spectator, post_id
):
    """The dashboard's three queries are sent at once, each on a connection of its own."""
    await warm_pool(engine)
    peak, outcome = await count_waiting_statements(
        spectator, lambda: kata.load_dashboard(recorder.factory, post_id)
    )
    outcome.fail_if_crashed("SS1")
    assert outcome.value == expected_page(post_id), MSG(
        "wrong-page", post_id=post_id, got=outcome.value, expected=expected_page(post_id)
    )
    sessions = sorted({n for n in recorder.dashboard_sessions() if n is not None})
    key = "not-at-once-one-session" if len(sessions) <= 1 else "not-at-once"
    assert peak >= QUERIES, MSG(key, peak=peak, queries=QUERIES, sessions=len(sessions))


@pytest.mark.rule("SS1")
async def test_each_query_runs_in_a_session_of_its_own_even_on_a_cold_pool(kata, engine, recorder):
    """On a pool with no connection open yet, each query still gets a session (and connection)."""
    outcome = await attempt(lambda: within(10, kata.load_dashboard(recorder.factory, 2), "load_dashboard", "SS1"))
    if outcome.error == "IllegalStateChangeError":
        pytest.fail(MSG("illegal-state", message=outcome.message[:160]), pytrace=False)
    outcome.fail_if_crashed("SS1")
    assert outcome.value == expected_page(2), MSG(
        "wrong-page", post_id=2, got=outcome.value, expected=expected_page(2)
    )
    ran_in = recorder.dashboard_sessions()
    distinct = {n for n in ran_in if n is not None}
    assert len(ran_in) >= QUERIES and len(distinct) >= QUERIES, MSG(
        "shared-session", statements=len(ran_in), sessions=len(distinct)
    )


@pytest.mark.rule("SS1")
async def test_five_dashboards_at_once_leave_no_connection_checked_out(kata, engine, recorder):
    """Five dashboard requests at once: right pages, and afterwards every connection is back."""
    app = kata.create_app(recorder.factory)
    async with client_for(app, raise_app_exceptions=True) as client:
        replies = await within(
            10,
            asyncio.gather(
                *(client.get(f"/posts/{i}/dashboard") for i in range(1, 6)), return_exceptions=True
            ),
            "Five GET /posts/{id}/dashboard requests",
            "SS1",
        )
    errors = [r for r in replies if isinstance(r, BaseException)]
    if errors:
        error = errors[0]
        if type(error).__name__ == "IllegalStateChangeError":
            pytest.fail(MSG("illegal-state", message=str(error)[:160]), pytrace=False)
        pytest.fail(
            MSG("crashed", n=len(errors), error=type(error).__name__, message=str(error)[:160]),
            pytrace=False,
        )
    wrong = [
        (i, r.status_code, r.text[:120])
        for i, r in zip(range(1, 6), replies)
        if r.status_code != 200 or r.json() != expected_page(i)
    ]
    assert not wrong, MSG("wrong-replies", wrong=wrong[:2])
    left = checked_out(engine)
    unclosed = sum(1 for s in recorder.sessions if s.sync_session.in_transaction())
    assert left == 0, MSG("left-checked-out", left=left, sessions=len(recorder.sessions), unclosed=unclosed)


# --- SS2: a background task opens its own session -----------------------------------------------


async def post_comment(kata, recorder, post_id: int, content: str):
    """POST a comment; the reply, once the response and its background task are done.

    ASGITransport answers once the app is done, background tasks included; with
    raise_app_exceptions an error in the background task reaches this spec instead of vanishing.
    """
    app = kata.create_app(recorder.factory)
    async with client_for(app, raise_app_exceptions=True) as client:
        request = client.post(f"/posts/{post_id}/comments", json={"content": content})
        outcome = await attempt(lambda: within(10, request, f"POST /posts/{post_id}/comments", "SS2"))
    outcome.fail_if_crashed("SS2")
    return outcome.value


@pytest.mark.rule("SS2")
@pytest.mark.parametrize("post_id", [3, 5])
async def test_the_background_task_writes_its_audit_entry_through_a_session_of_its_own(
    kata, engine, recorder, spectator, post_id
):
    """The comment is saved by the request's session, the audit entry by the task's own session."""
    reply = await post_comment(kata, recorder, post_id, f"Comment on post {post_id}")
    assert reply.status_code == 201, MSG("comment-status", status=reply.status_code, body=reply.text[:160])

    comments = await committed(
        spectator, "SELECT count(*) FROM comments WHERE post_id = :p AND content = :c",
        p=post_id, c=f"Comment on post {post_id}",
    )
    audits = await committed(spectator, "SELECT count(*) FROM audit_entries WHERE post_id = :p", p=post_id)
    assert comments == 1 and audits == 1, MSG("not-saved", comments=comments, audits=audits)

    comment_in = recorder.sessions_of("INSERT INTO comments")
    audit_in = recorder.sessions_of("INSERT INTO audit_entries")
    shared = set(comment_in) & set(audit_in)
    assert not shared, MSG("request-session-reused", session=min(shared))


@pytest.mark.rule("SS2")
async def test_after_the_background_task_no_connection_is_left_checked_out(kata, engine, recorder):
    """Once the response and its background task are done, every connection is back in the pool."""
    reply = await post_comment(kata, recorder, 1, "One more comment")
    assert reply.status_code == 201, MSG("comment-status", status=reply.status_code, body=reply.text[:160])
    left = checked_out(engine)
    assert left == 0, MSG("task-left-checked-out", left=left, sessions=len(recorder.sessions))


# --- SS1, the other half: work that must be one transaction is one session, awaited in turn -----

# PostgreSQL itself records which transaction, on which backend, made each of the two writes:
# triggers the spec adds write (table, txid_current(), pg_backend_pid()) into a log of its own,
# inside the writer's transaction, so a log row exists only if its write was committed.
WRITE_LOG = [
    "CREATE TABLE spec_write_log (id serial PRIMARY KEY, tbl text, txid bigint, pid integer)",
    "CREATE FUNCTION spec_log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO spec_write_log (tbl, txid, pid) VALUES (TG_TABLE_NAME, txid_current(), pg_backend_pid()); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER spec_log_delete AFTER DELETE ON comments FOR EACH STATEMENT EXECUTE FUNCTION spec_log_write()",
    "CREATE TRIGGER spec_log_audit AFTER INSERT ON audit_entries FOR EACH STATEMENT EXECUTE FUNCTION spec_log_write()",
]
# A write that fails on purpose: a trigger that raises, on the deletion or on the audit entry.
REFUSE = (
    "CREATE FUNCTION spec_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'the spec refuses this write (%)', TG_TABLE_NAME; END $$"
)
REFUSED = {
    "the-audit-entry-fails": "BEFORE INSERT ON audit_entries",
    "the-deletion-fails": "BEFORE DELETE ON comments",
}
CLEARED = 1  # the post whose comments are cleared: three of them in the seed


async def run_sql(spectator, statements) -> None:
    async with spectator.begin() as conn:
        for sql in statements:
            await conn.execute(text(sql))


async def returned_all_connections(engine, within: float = 3.0) -> int:
    """Checked-out connections once they stop coming back (a task left running by a gather that
    raised still commits; wait for it, so every run is judged on what it leaves in the end)."""
    stop = time.monotonic() + within
    while checked_out(engine) and time.monotonic() < stop:
        await asyncio.sleep(0.02)
    return checked_out(engine)


async def what_another_connection_sees(spectator) -> tuple[int, int]:
    comments = await committed(spectator, "SELECT count(*) FROM comments WHERE post_id = :p", p=CLEARED)
    audits = await committed(
        spectator, "SELECT count(*) FROM audit_entries WHERE post_id = :p AND action = 'comments cleared'", p=CLEARED
    )
    return comments, audits


@pytest.mark.rule("SS1")
async def test_clearing_comments_is_one_transaction_on_one_connection(kata, engine, recorder, spectator):
    """The deletion and the audit entry are committed by one transaction of one backend (cold pool)."""
    await run_sql(spectator, WRITE_LOG)
    await engine.dispose()  # a cold pool: no connection open yet, as after a deploy
    outcome = await attempt(lambda: within(10, kata.clear_comments(recorder.factory, CLEARED), "clear_comments", "SS1"))
    if outcome.error == "IllegalStateChangeError" or "concurrent operations are not permitted" in (outcome.message or ""):
        pytest.fail(MSG("clear-illegal-state", message=outcome.message[:160]), pytrace=False)
    outcome.fail_if_crashed("SS1")
    expected = len(seed.comments_of(CLEARED))
    assert outcome.value == expected, MSG("clear-wrong-count", got=outcome.value, expected=expected)
    await returned_all_connections(engine)
    comments, audits = await what_another_connection_sees(spectator)
    assert comments == 0 and audits == 1, MSG("clear-not-saved", comments=comments, audits=audits, expected=expected)
    async with spectator.connect() as conn:
        log = (await conn.execute(text("SELECT tbl, txid, pid FROM spec_write_log ORDER BY id"))).all()
    transactions = sorted({(row.txid, row.pid) for row in log})
    assert len(transactions) == 1, MSG(
        "clear-two-transactions",
        n=len(transactions),
        writes="; ".join(MSG("clear-write", table=row.tbl, txid=row.txid, pid=row.pid) for row in log),
        backends=len({row.pid for row in log}),
    )


@pytest.mark.rule("SS1")
@pytest.mark.parametrize("refused", list(REFUSED))
async def test_when_one_write_fails_the_other_is_not_saved_either(kata, engine, recorder, spectator, refused):
    """A failure in either write leaves the post's comments and no audit entry, as others see it."""
    trigger = f"CREATE TRIGGER spec_refuse {REFUSED[refused]} FOR EACH STATEMENT EXECUTE FUNCTION spec_refuse()"
    await run_sql(spectator, [REFUSE, trigger])
    await warm_pool(engine, 2)
    outcome = await attempt(lambda: within(10, kata.clear_comments(recorder.factory, CLEARED), "clear_comments", "SS1"))
    if outcome.error == "IllegalStateChangeError":
        pytest.fail(MSG("clear-illegal-state", message=outcome.message[:160]), pytrace=False)
    left = await returned_all_connections(engine)
    comments, audits = await what_another_connection_sees(spectator)
    expected = len(seed.comments_of(CLEARED))
    failed = MSG(refused)
    assert comments == expected and audits == 0, MSG(
        "clear-half-saved", failed=failed, comments=comments, expected=expected, audits=audits
    )
    assert left == 0, MSG("clear-left-checked-out", failed=failed, left=left)
