"""Specs of kata 11: timeouts and cancellation (rules TO1, TO2, TO3). Do not edit: edit reports.py.

Each spec gets its own copy of the seeded blog database. Your app runs in this test's event loop
(httpx.ASGITransport); the report asks PostgreSQL for a pg_sleep far longer than any budget, so
only giving up can end it. The checks are what a client and the database see: the status code,
the connections still checked out of your engine's pool, and whether the query is still running
in PostgreSQL (pg_stat_activity) after the request gave up. Deadlines are 5x the budget or more.
A spec stops waiting early only on a fact that shows waiting cannot help: the engine's connections
have no server-side guard at all, or the report query has already run in PostgreSQL for 5x the
budget (the budget started before the query did, so that is a 5x margin too). The spec of a
guard that must not stop a quick query reads the engine's settings first: PostgreSQL stops no
statement before its statement_timeout, so a long enough one (or none) needs no query to show it.
One problem, one message: the first spec to meet one (a request that never gives up, an engine
without a guard) tells it, and another spec that meets it again points there in one line.
The TO3 spec serves your app with a real uvicorn on 127.0.0.1 and closes a raw socket mid-request:
then it watches that query's backend in pg_stat_activity and your pool (1 s allowed; under 0.1 s
when the endpoint cancels its query, 20 s or more when nothing does). It stops waiting early when
your app cannot notice the close: no receive() waits, no thread works for it, and nothing of its
own is due on the server's event loop (a poll's sleep, a timer) before the 1 s are up.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
import warnings

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from kata_tools import waiting
from kata_tools.attempts import attempt
from kata_tools.i18n import catalog
from kata_tools.serving import ServerDidNotStart, serving

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

FILE = "reports.py"
FOREVER = 30.0  # seconds of pg_sleep a slow report asks for: only giving up ends it
LONG_GUARD = 20.0  # the engine's statement_timeout where a spec wants the app's own timeout to act
# Short, so a stub is caught fast; each paired with a spec that a value fixed in reports.py fails:
# a budget must end the query by 5 x 0.05 = 0.25 s (TO1, TO2) and let a 0.3 s report of a 1.5 s
# budget finish; a guard must stop it by 5 x 0.05 = 0.25 s and let a 0.3 s query of a 1.5 s guard run.
BUDGET = 0.05  # the app's timeout where a spec wants the app to give up first
GUARD = 0.05  # the engine's statement_timeout where a spec wants the database to stop the query
GONE_WITHIN = 2.0  # a cancelled query leaves pg_stat_activity within milliseconds; allow this much


def deadline(budget: float) -> float:
    """How long a spec waits for something due after `budget` seconds: 5x, plus start-up room."""
    return 5 * budget + 1.5


@pytest.fixture
def kata(kata_module):
    return kata_module(FILE)


@pytest_asyncio.fixture
async def spectator(seeded_db):
    """The spec's own connections, off the learner's pool."""
    engine = create_async_engine(seeded_db.async_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


REPORT_QUERIES = (
    "FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE '%pg_sleep(%'"
)
RUNNING = text(f"SELECT pid {REPORT_QUERIES}")
# How long the oldest report query has been running, by the server's own clock.
RUNNING_FOR = text(f"SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0) {REPORT_QUERIES}")
POLL = 0.1  # how often a spec looks at pg_stat_activity while it waits


async def running_queries(spectator) -> list[int]:
    async with spectator.connect() as conn:
        return list((await conn.execute(RUNNING)).scalars())


def overdue(spectator, budget: float):
    """stuck() for bounded(): 0 once a report query has run in PostgreSQL for 5x `budget`, else
    how long to wait before it can have (a query's run time grows no faster than the clock)."""
    limit = 5 * budget

    async def stuck() -> float:
        async with spectator.connect() as conn:
            ran = float((await conn.execute(RUNNING_FOR)).scalar())
        if ran >= limit:
            return 0.0
        return limit - ran if ran else POLL  # no report query yet: look again soon

    return stuck


async def read_guard(engine: AsyncEngine) -> tuple[str, bool | None]:
    """On one of the engine's own connections: (statement_timeout as PostgreSQL reports it,
    whether asyncpg's command_timeout is set, or None when that cannot be read)."""
    async with engine.connect() as conn:
        setting = str((await conn.execute(text("SHOW statement_timeout"))).scalar())
        raw = await conn.get_raw_connection()
        config = getattr(raw.driver_connection, "_config", None)
    return setting, (bool(config.command_timeout) if hasattr(config, "command_timeout") else None)


async def server_guard(engine: AsyncEngine) -> tuple[str, str, bool | None]:
    """How this engine's statements are guarded on the server side: statement_timeout on a new
    connection, the same once the pool has taken it back and lent it again (a SET inside the
    transaction the pool rolls back on return is undone), and asyncpg's command_timeout.

    Whatever the engine's guard is (server_settings, a connect or checkout event, options=-c...),
    this is what PostgreSQL applies. When it cannot be read, ("?", "?", None): the spec then
    waits, as it would without this. The connection stays in the pool, warm, so a request's
    budget goes to its query, on a connection the pool has already lent once, as in production.
    """
    try:
        first, command_timeout = await read_guard(engine)
        again, _ = await read_guard(engine)
    except Exception:  # the request itself will show what is wrong with the engine
        return "?", "?", None
    return first, again, command_timeout


SEEN = pytest.StashKey[dict]()


class Seen:
    """One problem, one message: what this run's specs already failed on, each with the spec whose
    message told it. A spec that meets the same problem says so in one line, pointing there (and
    where seeing it again takes a 5x wait, the 504 spec's request, it does not wait again)."""

    def __init__(self, request: pytest.FixtureRequest):
        self.store = request.config.stash.setdefault(SEEN, {})
        self.name = request.node.name

    def before(self, problem: str, of: float, **fields) -> None:
        """Fail at once with the `<problem>-seen` message when a spec failed on it (of the same
        budget or guard `of`) earlier in this run."""
        spec = self.store.get((problem, of))
        if spec is not None:
            pytest.fail(MSG(f"{problem}-seen", spec=spec, **fields), pytrace=False)

    def saw(self, problem: str, of: float) -> None:
        self.store.setdefault((problem, of), self.name)


@pytest.fixture
def seen(request) -> Seen:
    return Seen(request)


async def fail_without_guard(engine: AsyncEngine, guard: float, wait: float, rule: str, seen: Seen) -> None:
    """Fail at once when nothing can stop a statement on the server side: waiting cannot help."""
    first, again, command_timeout = await server_guard(engine)
    if command_timeout is not False or again != "0":
        return
    problem = "guard-off" if first == "0" else "guard-lost"
    seen.before(problem, of=guard, guard=guard, rule=rule)
    seen.saw(problem, of=guard)
    if first != "0":
        pytest.fail(MSG("guard-lost", guard=guard, first=first, setting=again, rule=rule), pytrace=False)
    pytest.fail(MSG("guard-off", guard=guard, setting=again, wait=wait, rule=rule), pytrace=False)


GUARDS = text(
    "SELECT setting::bigint FROM pg_settings WHERE name IN ('statement_timeout', 'transaction_timeout')"
)


async def let_through(engine: AsyncEngine) -> float | None:
    """How long a statement may run on this engine's connections before PostgreSQL stops it,
    read from their settings in milliseconds (math.inf when nothing does), on a new connection
    and on one the pool lent again. None when a guard is not in the settings (asyncpg's
    command_timeout is a timer of the client's own) or the settings cannot be read."""
    limits: list[float] = []
    try:
        for _ in range(2):
            async with engine.connect() as conn:
                limits += [ms / 1000 for ms in (await conn.execute(GUARDS)).scalars() if ms]
                raw = await conn.get_raw_connection()
                config = getattr(raw.driver_connection, "_config", None)
            if getattr(config, "command_timeout", True):  # set, or not asyncpg's config: unknown
                return None
    except Exception:  # the query itself will show what is wrong with the engine
        return None
    return min(limits, default=math.inf)


def checked_out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()


def collect_lost_connections() -> int:
    """Connections nobody closed whose objects were already dropped: the garbage collector hands
    them back to the pool with a warning, so the pool's count alone would miss them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return sum("non-checked-in connection" in str(w.message) for w in caught)


@pytest_asyncio.fixture
async def engines(kata, seeded_db, spectator):
    """make(statement_timeout): the learner's make_engine on this spec's database; all disposed after."""
    made: list[AsyncEngine] = []

    def make(statement_timeout: float) -> AsyncEngine:
        engine = kata.make_engine(seeded_db.plain_url, statement_timeout)
        if not isinstance(engine, AsyncEngine):
            pytest.fail(MSG("not-an-engine", kind=type(engine).__name__), pytrace=False)
        made.append(engine)
        return engine

    yield make
    collect_lost_connections()  # a lost connection must not warn in some later, innocent spec
    # A query left running would hold its connection (and its task) past the spec: stop it.
    async with spectator.connect() as conn:
        for pid in await running_queries(spectator):
            await conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
    for engine in made:
        stop = time.monotonic() + GONE_WITHIN
        while checked_out(engine) and time.monotonic() < stop:
            await asyncio.sleep(0.02)
        await engine.dispose()


def client_for(app) -> httpx.AsyncClient:
    # raise_app_exceptions: an exception the app lets escape reaches the spec (a client sees 500).
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def bounded(awaitable, within: float, stuck=None) -> tuple[asyncio.Task, bool]:
    """Run `awaitable` for at most `within` seconds: (its task, whether it finished in time).

    stuck: an async check that waiting longer cannot help: 0 when it cannot, else how long to
    wait before asking again (see overdue()). Not wait_for: an app that lets a TimeoutError
    escape must not look like our own deadline. A task still running at the deadline is
    cancelled and awaited.
    """
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    stop = loop.time() + within
    pause = POLL if stuck else within
    while not task.done() and loop.time() < stop:
        await asyncio.wait({task}, timeout=max(0.0, min(stop - loop.time(), pause)))
        if not task.done() and stuck is not None:
            pause = await stuck()
            if pause <= 0:
                break
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
        return task, False
    return task, True


async def get_report(app, report_id: int, seconds: float, within: float, stuck=None):
    """GET /reports/{id}?seconds=S: (outcome, finished in time, seconds waited). The outcome
    holds the response or the exception the app let escape."""
    started = time.monotonic()
    async with client_for(app) as client:
        request = client.get(f"/reports/{report_id}", params={"seconds": seconds})
        task, in_time = await bounded(request, within, stuck)
        waited = round(time.monotonic() - started, 1)
        if not in_time:
            return None, False, waited
        outcome = await attempt(lambda: task)
    return outcome, True, waited


def escaped(outcome) -> str:
    return MSG("escaped", error=outcome.error, where=outcome.where or "reports.py", message=(outcome.message.splitlines() or [""])[0][:160])


# --- TO1: give up in time, and answer 504 -------------------------------------------------------


@pytest.mark.rule("TO1")
@pytest.mark.parametrize("timeout", [BUDGET])
async def test_a_slow_report_answers_504_once_its_time_is_up(kata, engines, spectator, seen, timeout):
    """A report slower than the budget answers 504 Gateway Timeout, not long after the budget."""
    seen.before("no-answer", of=timeout, timeout=timeout)
    engine = engines(LONG_GUARD)
    await server_guard(engine)  # warms the pool: the budget goes to the query
    app = kata.create_app(engine, timeout)
    outcome, in_time, waited = await get_report(app, 7, FOREVER, deadline(timeout), overdue(spectator, timeout))
    if not in_time:
        seen.saw("no-answer", of=timeout)
    assert in_time, MSG("no-answer", timeout=timeout, wait=waited, seconds=FOREVER)
    assert not outcome.error, escaped(outcome)
    reply = outcome.value
    assert reply.status_code == 504, MSG("wrong-status", status=reply.status_code, body=reply.text[:160])


@pytest.mark.rule("TO1")
@pytest.mark.parametrize(("timeout", "seconds"), [(1.5, 0.3), (1.0, 0.05)])
async def test_a_report_within_its_budget_still_answers_200(kata, engines, timeout, seconds):
    """A report that takes a fifth of the budget or less is not cut short: 200 and its id."""
    app = kata.create_app(engines(LONG_GUARD), timeout)
    outcome, in_time, _waited = await get_report(app, 3, seconds, deadline(timeout))
    assert in_time, MSG("no-answer", timeout=timeout, wait=deadline(timeout), seconds=seconds)
    assert not outcome.error, escaped(outcome)
    reply = outcome.value
    assert reply.status_code == 200 and reply.json() == {"report_id": 3}, MSG(
        "cut-short", seconds=seconds, timeout=timeout, status=reply.status_code, body=reply.text[:160]
    )


@pytest.mark.rule("TO1")
async def test_a_report_the_database_stopped_answers_504_too(kata, engines, spectator, seen):
    """When the engine's statement timeout stops the query first, the client still gets 504."""
    guard, budget = GUARD, 4.0
    engine = engines(guard)
    wait = deadline(guard)  # well before the app's own budget runs out
    await fail_without_guard(engine, guard, wait, "TO1", seen)
    app = kata.create_app(engine, budget)
    outcome, in_time, waited = await get_report(app, 9, FOREVER, wait, overdue(spectator, guard))
    assert in_time, MSG("guard-silent", guard=guard, wait=waited)
    if outcome.error == "DBAPIError":
        pytest.fail(MSG("guard-500", message=(outcome.message.splitlines() or [""])[0][:160]), pytrace=False)
    assert not outcome.error, escaped(outcome)
    reply = outcome.value
    assert reply.status_code == 504, MSG("wrong-status", status=reply.status_code, body=reply.text[:160])


# --- TO2: what is left after giving up: nothing --------------------------------------------------


@pytest.mark.rule("TO2")
@pytest.mark.parametrize(
    ("guard", "timeout"),
    [(LONG_GUARD, BUDGET), (GUARD, 4.0)],
    ids=["the-app-gives-up", "the-database-stops-it"],
)
async def test_after_giving_up_the_connection_is_back_and_the_query_is_gone(
    kata, engines, spectator, seen, guard, timeout
):
    """Once the 504 is sent (the app's timeout or the database's guard), no connection is checked
    out and PostgreSQL runs no report query."""
    engine = engines(guard)
    budget = min(guard, timeout)
    wait = deadline(budget)
    if guard < timeout:  # the database is to stop it: with no guard at all, waiting cannot help
        await fail_without_guard(engine, guard, wait, "TO2", seen)
    else:
        seen.before("no-answer", of=timeout, timeout=timeout)  # the 504 spec's very request
        await server_guard(engine)  # warms the pool: the budget goes to the query
    app = kata.create_app(engine, timeout)
    with warnings.catch_warnings(record=True) as caught:  # a connection the GC had to take back
        warnings.simplefilter("always")
        _outcome, in_time, waited = await get_report(app, 4, FOREVER, wait, overdue(spectator, budget))
        if not in_time and guard > timeout:
            seen.saw("no-answer", of=timeout)
        assert in_time, MSG("no-answer", timeout=budget, wait=waited, seconds=FOREVER)

        stop = time.monotonic() + GONE_WITHIN
        left, running = checked_out(engine), await running_queries(spectator)
        while (left or running) and time.monotonic() < stop:
            await asyncio.sleep(0.05)
            left, running = checked_out(engine), await running_queries(spectator)
    lost = collect_lost_connections() + sum("non-checked-in connection" in str(w.message) for w in caught)
    left = checked_out(engine)  # again: what the garbage collector took back is no longer out
    assert not running, MSG("still-running", running=len(running), left=left + lost, gone=GONE_WITHIN)
    assert left + lost == 0, MSG("still-checked-out", left=left + lost, gone=GONE_WITHIN)


@pytest.mark.rule("TO2")
async def test_the_database_stops_a_runaway_query_by_itself(kata, engines, spectator, seen):
    """With nobody to cancel it, a query longer than statement_timeout is stopped by PostgreSQL."""
    guard = GUARD
    engine = engines(guard)
    wait = deadline(guard)
    await fail_without_guard(engine, guard, wait, "TO2", seen)
    started = time.monotonic()
    async with engine.connect() as connection:
        query = connection.execute(text("SELECT pg_sleep(:s)"), {"s": FOREVER})
        task, in_time = await bounded(query, wait, overdue(spectator, guard))
        wait = round(time.monotonic() - started, 1)
        if not in_time:
            stopped = None  # our deadline: nothing on the server side stopped it
        elif task.exception() is None:
            stopped = "no error"
        else:  # statement_timeout: DBAPIError; asyncpg's command_timeout: TimeoutError
            stopped = type(task.exception()).__name__
    assert stopped is not None, MSG("no-guard", guard=guard, wait=wait)
    assert stopped != "no error", MSG("no-guard", guard=guard, wait=wait)
    running = await running_queries(spectator)
    assert not running, MSG("guard-left-running", running=len(running))


@pytest.mark.rule("TO2")
@pytest.mark.parametrize("guard", [1.0, 1.5])
async def test_the_guard_lets_a_query_of_a_fifth_of_it_finish(kata, engines, guard):
    """statement_timeout=S stops statements after S seconds, not sooner: a query of S / 5 runs."""
    engine = engines(guard)
    quick = guard / 5
    # PostgreSQL stops no statement before its statement_timeout: settings that let one run for
    # `guard` s or longer answer this spec as the query would, without its guard / 5 s wait.
    if (await let_through(engine) or 0) >= guard:
        return
    async with engine.connect() as connection:
        run = lambda: connection.execute(text("SELECT pg_sleep(:s)"), {"s": quick})  # noqa: E731
        task, in_time = await bounded(run(), deadline(guard))
    error = type(task.exception()).__name__ if in_time and task.exception() else None
    assert in_time and not error, MSG("guard-too-tight", guard=guard, quick=quick, error=error or MSG("no-error-deadline"))


# --- TO3: a client that goes away takes its query with it ----------------------------------------

# The query of a client that left is gone and its connection back 0.01-0.04 s after the close with a
# task waiting on receive(), 0.06-0.11 s with a 50 ms poll of is_disconnected() (benchmarks/
# disconnect_probe.py, 2026-12-02 and 12-04); 1 s leaves 5x for a poll every 0.2 s. The budget and the
# guard are 20 s, so only cancelling on the disconnect is in time.
LEFT_WITHIN = 1.0
STARTS_WITHIN = 10.0  # a served report's query shows in pg_stat_activity within ~0.1 s measured


class Served:
    """The learner's app as uvicorn serves it, in a thread with an event loop of its own: the
    engine's connections are opened on that loop, so its lifespan's end disposes them there.

    It also keeps what tells when waiting for the app cannot help: the server's loop and its own
    tasks (uvicorn's main loop, the lifespan), and the app's receive() calls for the request: how
    many are waiting now, and whether one has returned http.disconnect.
    """

    def __init__(self, app, engine: AsyncEngine, learner_file: str):
        self.app, self.engine, self.learner_file = app, engine, learner_file
        self.loop: asyncio.AbstractEventLoop | None = None
        self.own_tasks: frozenset = frozenset()
        self.receiving, self.told_gone = 0, False

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            return await self.app(scope, self.watched(receive), send)
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.loop, self.own_tasks = asyncio.get_running_loop(), frozenset(asyncio.all_tasks())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.engine.dispose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def watched(self, receive):
        async def receive_watched():
            self.receiving += 1
            try:
                message = await receive()
            finally:
                self.receiving -= 1
            self.told_gone = self.told_gone or message["type"] == "http.disconnect"
            return message

        return receive_watched

    async def cannot_notice(self, within: float) -> bool:
        """True when the app cannot learn in the next `within` s that its client left: no receive()
        waits, none has returned http.disconnect, no thread runs the learner's code or a pool's job,
        and nothing is due on the server's loop but its own tasks (no timer of the app's: a poll's
        sleep, a wait_for), so only I/O can wake the app, and the answer of its 30 s query is the
        only I/O it awaits. False when that cannot be read: the spec waits, as it did before."""
        loop = self.loop
        if loop is None or self.receiving or self.told_gone:
            return False

        def look() -> bool:  # on the server's thread, between two steps of its tasks
            until = loop.time() + within
            quiet = not self.receiving and not self.told_gone
            quiet = quiet and not waiting.threads_at_work([self.learner_file])
            return quiet and waiting.nothing_due_but_io(loop, self.own_tasks, until)

        # From a thread (look_on blocks until the look ran), idle while it waits: False when the
        # loop is closed or held by a blocking call; the spec then waits, as it did before.
        return await asyncio.to_thread(waiting.look_on, loop, look, 0.5)


async def report_backend(spectator, reader, within: float) -> tuple[int | None, str]:
    """The backend pid running the report's query, once it shows in pg_stat_activity; or (None,
    the first line the server answered, if it answered instead)."""
    answer = asyncio.ensure_future(reader.readline())
    try:
        stop = time.monotonic() + within
        while time.monotonic() < stop and not answer.done():
            running = await running_queries(spectator)
            if running:
                return running[0], ""
            await asyncio.wait({answer}, timeout=0.02)
    finally:
        answer.cancel()
        await asyncio.wait({answer})
    first = b"" if answer.cancelled() or answer.exception() else answer.result()
    return None, first.decode(errors="replace").strip()


async def backend_state(spectator, pid: int) -> str:
    """What the backend is doing now: 'active' (still the report query), 'idle', ..., or 'gone'."""
    async with spectator.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, query FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
        ).first()
    if row is None:
        return "gone"
    return "active" if row.state == "active" and "pg_sleep(" in row.query else str(row.state)


@pytest.mark.rule("TO3")
@pytest.mark.timeout(40)
async def test_a_client_that_disconnects_takes_its_query_with_it(kata, engines, spectator):
    """uvicorn on 127.0.0.1; a raw-socket client asks for a 30 s report and closes its socket once
    the query runs: the query stops and the connection is back in the pool within 1 s (the
    request's budget and the database's guard are 20 s each, so only the disconnect can do it)."""
    engine = engines(LONG_GUARD)
    served = Served(kata.create_app(engine, LONG_GUARD), engine, kata.__file__)
    try:
        async with serving(served, loop="asyncio") as base_url:  # asyncio: its queues can be read
            port = int(base_url.rsplit(":", 1)[1])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = f"GET /reports/6?seconds={FOREVER:g} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            writer.write(request.encode())
            await writer.drain()
            pid, answered = await report_backend(spectator, reader, STARTS_WITHIN)
            writer.close()  # the client goes away mid-request
            if pid is None:
                pytest.fail(MSG("left-never-ran", within=STARTS_WITHIN, answered=answered or "-"), pytrace=False)
            stop = time.monotonic() + LEFT_WITHIN
            state, left = await backend_state(spectator, pid), checked_out(engine)
            unnoticed = 0  # looks in a row that found nothing in the app able to notice the close
            while (state == "active" or left) and time.monotonic() < stop and unnoticed < 2:
                await asyncio.sleep(0.05)
                state, left = await backend_state(spectator, pid), checked_out(engine)
                quiet = state == "active" and await served.cannot_notice(stop - time.monotonic())
                unnoticed = unnoticed + 1 if quiet else 0
            if state == "active":  # the server cannot stop until the handler ends: end it now
                async with spectator.connect() as conn:
                    await conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
    except ServerDidNotStart as e:
        pytest.fail(MSG("left-no-server", error=str(e)), pytrace=False)
    if state == "active" and unnoticed >= 2:
        pytest.fail(MSG("left-unnoticed", pid=pid, within=LEFT_WITHIN, budget=LONG_GUARD), pytrace=False)
    assert state != "active", MSG("left-still-running", pid=pid, within=LEFT_WITHIN, budget=LONG_GUARD)
    assert left == 0, MSG("left-checked-out", left=left, within=LEFT_WITHIN)
