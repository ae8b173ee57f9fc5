"""Specs of kata 05: the async engine (rules AE1-AE4). Do not edit: edit async_database.py.

async_database.py builds its engine when it is imported, from DATABASE_URL, as the course notes'
module does. So every spec sets DATABASE_URL first, imports a fresh copy of the module, and
disposes that copy's engine afterwards. Each spec that connects gets its own copy of the seeded
blog database. The checks count what really happened: which driver answered, how many pool
connections were lent and given back, which rows another connection can see.
The failure messages live in messages.toml beside this file, in English and Korean.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from kata_blog import seed
from kata_blog.models import Post
from kata_blog.schemas import PostCreate, PostListResponse
from kata_tools.attempts import Attempt, attempt
from kata_tools.i18n import catalog
from kata_tools.loader import import_file, module_name, source_root

pytestmark = pytest.mark.asyncio

MSG = catalog(__file__)

FILE = "async_database.py"
# A URL of the kind a DATABASE_URL holds, different in every run (and with a password that
# needs escaping), so no hard-coded URL passes. Nothing connects to it: creating an engine opens
# no connection, so the URL specs read what the module made of it.
_RUN = random.randint(1000, 9999)
USER, PASSWORD, HOST, PORT, DBNAME = (
    f"kata{_RUN}", f"s3cr@t/{_RUN}", f"db{_RUN}.example", random.randint(5433, 6999), f"blog{_RUN}"
)
FAKE = f"{USER}:{quote(PASSWORD, safe='')}@{HOST}:{PORT}/{DBNAME}"


def fail(key: str, **fields) -> None:
    pytest.fail(MSG(key, **fields), pytrace=False)


# --- running learner code ------------------------------------------------------------------------


def crashed(outcome: Attempt) -> None:
    """Fail with the learner's own error (or forgotten await), in the run's language."""
    if outcome.unawaited:
        fail("not-awaited", call=outcome.unawaited[0])
    if outcome.error:
        fail("crashed", error=outcome.error, where=outcome.where or FILE, message=outcome.message)


# --- loading the learner's module ----------------------------------------------------------------


class Loaded:
    """Every module copy a spec imported, so the teardown can dispose their engines."""

    def __init__(self):
        self.modules = []
        self.sessions = []  # sessions handed to endpoints: closed at teardown if still open

    async def close(self):
        for session in self.sessions:
            if isinstance(session, AsyncSession):
                await session.close()
        for module in self.modules:
            engine = vars(module).get("async_engine")
            if isinstance(engine, AsyncEngine):
                await engine.dispose()
            elif hasattr(engine, "dispose"):
                engine.dispose()


@pytest_asyncio.fixture
async def loaded(request):
    if "seeded_db" in request.fixturenames:
        request.getfixturevalue("seeded_db")  # set up first, so it is dropped after the disposal
    loaded = Loaded()
    yield loaded
    await loaded.close()


def import_failure(failure: pytest.fail.Exception) -> tuple[str, str] | None:
    """(where, reason) of the loader's "importing the file raised ..." failure, else None."""
    if getattr(failure, "kind", None) is not None:  # loader.LearnerImportFailed: read, not parsed
        return (failure.where or failure.file, failure.error) if failure.kind == "crash" else None
    where, sep, reason = str(failure).partition(": importing the file raised ")
    if not sep:
        return None
    return where, reason.split(". A learner module")[0].rstrip(".")


SESSION_OPTIONS = ("expire_on_commit", "class_", "autoflush", "autobegin", "bind")
DRIVER_SIGNS = (
    "is not async", "Can't load plugin", "No module named 'psycopg", "requires an async driver",
)


def blame_import(where: str, reason: str, database_url: str) -> None:
    """The likely cause of a crash at import, named from the error itself."""
    url = shown(database_url)
    reason = reason.split(", using configuration")[0].split(" (Background")[0]
    option = next((o for o in SESSION_OPTIONS if f"'{o}'" in reason), None)
    if "Invalid argument" in reason and option:
        fail("import-session-option", where=where, option=option, reason=reason)
    if "got None" in reason or "'NoneType' object" in reason:
        fail("import-no-url", where=where, reason=reason, url=url)
    if any(sign in reason for sign in DRIVER_SIGNS):
        fail("import-driver", where=where, reason=reason, url=url)
    fail("import-failed", where=where, reason=reason, url=url)


@pytest.fixture
def load(kata_module, monkeypatch, loaded):
    """load(url): set DATABASE_URL to url, import a fresh async_database.py, return it."""

    def load(database_url: str):
        monkeypatch.setenv("DATABASE_URL", database_url)
        try:
            module = kata_module(FILE, fresh=True)
        except pytest.fail.Exception as e:
            failure = import_failure(e)
            if failure is None:
                raise  # a missing file or a syntax error: the loader's message says it all
            blame_import(*failure, database_url)
        loaded.modules.append(module)
        return module

    return load


def shown(url: str) -> str:
    return url if len(url) < 60 else url[:57] + "..."


def require(module, name: str, key: str):
    value = vars(module).get(name)
    if value is None:
        fail(key)
    return value


def engine_of(module) -> AsyncEngine:
    engine = require(module, "async_engine", "engine-none")
    if not isinstance(engine, AsyncEngine):
        fail("engine-not-async", kind=type(engine).__name__)
    return engine


def new_session(module) -> AsyncSession:
    """A session from the learner's AsyncSessionLocal, checked to be an AsyncSession."""
    engine_of(module)  # a sync engine would fail inside AsyncSession() with a bare ArgumentError
    factory = require(module, "AsyncSessionLocal", "factory-none")
    session = factory()
    if not isinstance(session, AsyncSession):
        if hasattr(session, "close"):
            session.close()  # a sync Session that never connected: nothing to give back
        fail("session-not-async", kind=f"{type(session).__module__}.{type(session).__name__}")
    return session


class PoolWatch:
    """Counts the connections an engine's pool lends out and gets back (pool events)."""

    def __init__(self, engine: AsyncEngine):
        self.checkouts = self.checkins = 0
        event.listen(engine.sync_engine, "checkout", self._out)
        event.listen(engine.sync_engine, "checkin", self._in)

    def _out(self, *args):
        self.checkouts += 1

    def _in(self, *args):
        self.checkins += 1

    @property
    def outstanding(self) -> int:
        return self.checkouts - self.checkins


@pytest_asyncio.fixture
async def committed(seeded_db):
    """committed(title): how many posts carry `title`, seen by the spec's own connection.

    Only committed rows are visible to it, and it does not draw on the learner's pool, which a
    leaked session may have emptied.
    """
    engine = create_async_engine(seeded_db.async_url, poolclass=NullPool)

    async def count(title: str) -> int:
        async with engine.connect() as conn:
            query = select(func.count()).where(Post.title == title)
            return (await conn.execute(query)).scalar_one()

    yield count
    await engine.dispose()


def app_with(module, loaded: Loaded) -> FastAPI:
    """A small blog API on the learner's get_async_db; it keeps every session it was given."""
    engine_of(module)
    new_session(module)  # fails early, with the reason, if the factory is not async; never used
    get_async_db = require(module, "get_async_db", "dependency-none")
    app = FastAPI()

    async def db_session(db: AsyncSession = Depends(get_async_db)):
        loaded.sessions.append(db)
        return db

    @app.get("/posts/{post_id}", response_model=PostListResponse)
    async def read_post(post_id: int, db: AsyncSession = Depends(db_session)):
        return await db.get(Post, post_id)

    @app.put("/posts/{post_id}/title", response_model=PostListResponse)
    async def rename_post(post_id: int, title: str, db: AsyncSession = Depends(db_session)):
        post = await db.get(Post, post_id)
        post.title = title
        await db.commit()
        return post  # built into the response after the commit

    @app.post("/posts/fail")
    async def write_then_fail(db: AsyncSession = Depends(db_session)):
        db.add(Post(title="Never saved", content="The endpoint raised after writing this."))
        await db.flush()  # the INSERT reached the database, inside the open transaction
        raise RuntimeError("the endpoint failed after writing")

    return app


def client_for(app: FastAPI, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def within(seconds: float, awaitable, what: str, rule: str):
    """Await with a deadline: a hang fails this spec with the likely cause, not a bare timeout."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        fail("hangs", what=what, seconds=seconds)


# --- AE1: one DATABASE_URL, the asyncpg driver ---------------------------------------------------

URL_FORMS = {
    "postgresql": f"postgresql://{FAKE}",
    "postgresql+psycopg2": f"postgresql+psycopg2://{FAKE}",
    "postgresql+psycopg": f"postgresql+psycopg://{FAKE}",
    "postgres": f"postgres://{FAKE}",
}


@pytest.mark.rule("AE1")
@pytest.mark.parametrize("form", URL_FORMS)
async def test_the_async_url_names_asyncpg_whatever_driver_database_url_names(load, form):
    """ASYNC_DATABASE_URL is DATABASE_URL with only the driver changed, to postgresql+asyncpg."""
    given = URL_FORMS[form]
    module = load(given)

    sync_url = vars(module).get("SYNC_DATABASE_URL")
    if sync_url != given:
        fail("ae1-sync-url", got=repr(sync_url), given=given)
    async_url = vars(module).get("ASYNC_DATABASE_URL")
    if async_url is None:
        fail("ae1-async-url-none")
    url = make_url(async_url)
    if url.drivername != "postgresql+asyncpg":
        fail("ae1-driver", given=given, driver=url.drivername)
    if url.password != PASSWORD:
        key = "ae1-password-masked" if url.password == "***" else "ae1-password"
        fail(key, got=repr(url.password), expected=PASSWORD)
    parts = (url.username, url.host, url.port, url.database)
    if parts != (USER, HOST, PORT, DBNAME):
        fail("ae1-parts", parts=parts, expected=(USER, HOST, PORT, DBNAME))
    engine = engine_of(module)
    built_on = (engine.url.drivername, engine.url.host, engine.url.database)
    if built_on != ("postgresql+asyncpg", HOST, DBNAME):
        fail("ae1-engine-url", url=repr(engine.url))


@pytest.mark.rule("AE1")
async def test_the_engine_runs_its_queries_through_asyncpg(load, seeded_db):
    """A query through async_engine runs on an asyncpg connection to the DATABASE_URL database."""
    # The server's URL names its socket folder in the query (?host=/...): all of it must stay.
    engine = engine_of(load(seeded_db.plain_url))

    async def ask():
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = type(raw.driver_connection).__module__.split(".")[0]
            database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
        return driver, database

    outcome = await attempt(lambda: within(5, ask(), MSG("what-a-query"), "AE1"))
    if outcome.error:
        fail("ae1-cannot-connect", error=outcome.error, message=outcome.message[:200])
    crashed(outcome)
    driver, database = outcome.value
    if driver != "asyncpg":
        fail("ae1-not-asyncpg", driver=driver)
    if database != seeded_db.name:
        fail("ae1-other-database", database=database, expected=seeded_db.name)


@pytest.fixture
def project_dir(request, tmp_path, monkeypatch):
    """A copy of async_database.py in a folder of its own, made the working directory."""
    spec = Path(request.path)
    source = source_root(request.config, spec) / spec.parent.name / FILE
    folder = tmp_path / "project"
    folder.mkdir()
    if source.is_file():
        shutil.copy(source, folder / FILE)
    monkeypatch.chdir(folder)
    return folder


def import_copy(folder: Path, loaded: Loaded, database_url: str, from_dotenv: bool = False):
    try:
        module = import_file(folder / FILE, module_name("05_async_engine", FILE) + "__dotenv")
    except pytest.fail.Exception as e:
        failure = import_failure(e)
        if failure is None:
            raise
        where, reason = failure
        if from_dotenv and ("got None" in reason or "'NoneType' object" in reason):
            fail("ae1-dotenv-not-loaded-crash", where=where, reason=reason)
        blame_import(where, reason, database_url)
    loaded.modules.append(module)
    return module


@pytest.mark.rule("AE1")
async def test_a_dotenv_file_supplies_database_url_when_the_environment_has_none(
    project_dir, monkeypatch, loaded
):
    """With no DATABASE_URL in the environment, the one in .env is used."""
    # A .env beside the module and in the working directory: found however load_dotenv searches.
    (project_dir / ".env").write_text(f"DATABASE_URL=postgresql://{FAKE}\n")
    monkeypatch.setenv("DATABASE_URL", "restored after the spec")
    monkeypatch.delenv("DATABASE_URL")  # load_dotenv's write is undone with it

    module = import_copy(project_dir, loaded, f"postgresql://{FAKE}", from_dotenv=True)

    got = vars(module).get("SYNC_DATABASE_URL")
    if got != f"postgresql://{FAKE}":
        fail("ae1-dotenv-not-loaded", got=repr(got))
    async_url = vars(module).get("ASYNC_DATABASE_URL")
    if async_url is None or make_url(async_url).host != HOST:
        fail("ae1-dotenv-async-url", got=repr(async_url))


@pytest.mark.rule("AE1")
async def test_the_environment_wins_over_the_dotenv_file(project_dir, monkeypatch, loaded):
    """A DATABASE_URL set in the environment beats the one in .env (a deployment sets it)."""
    (project_dir / ".env").write_text("DATABASE_URL=postgresql://dev:dev@localhost/dev_blog\n")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://{FAKE}")

    module = import_copy(project_dir, loaded, f"postgresql://{FAKE}")

    got = vars(module).get("SYNC_DATABASE_URL")
    if got != f"postgresql://{FAKE}":
        fail("ae1-dotenv-overrides", got=repr(got), given=f"postgresql://{FAKE}")


# --- AE2: async engine, async sessions, awaited queries ------------------------------------------


@pytest.mark.rule("AE2")
async def test_async_session_local_opens_async_sessions_that_query_through_async_engine(
    load, seeded_db
):
    """AsyncSessionLocal() is an AsyncSession on async_engine: the same select, awaited."""
    module = load(seeded_db.plain_url)
    pool = PoolWatch(engine_of(module))

    session = new_session(module)
    try:
        outcome = await attempt(
            lambda: session.scalars(select(Post.title).order_by(Post.id))
        )
        crashed(outcome)
        titles = outcome.value.all()
    finally:
        await session.close()

    expected = [title for title, _ in seed.POSTS.values()]
    if titles != expected:
        fail("ae2-titles", titles=titles, n=len(expected))
    if pool.checkouts < 1:
        fail("ae2-other-engine")


@pytest.mark.rule("AE2")
async def test_create_post_awaits_its_commit_and_returns_the_saved_post(load, seeded_db, committed):
    """create_post awaits commit: the new post is saved and returned, no coroutine left un-awaited."""
    module = load(seeded_db.plain_url)
    engine_of(module)
    create_post = require(module, "create_post", "create-post-none")
    title = f"Saved by create_post {random.randint(1000, 9999)}"

    session = new_session(module)
    try:
        data = PostCreate(title=title, content="Kata 05.")
        outcome = await attempt(lambda: create_post(session, data))
    finally:
        await session.close()

    if outcome.unawaited:
        fail("ae2-not-awaited", call=outcome.unawaited[0])
    crashed(outcome)
    saved = await committed(title)
    if saved != 1:
        fail("ae2-not-saved", saved=saved, title=title)
    if outcome.value is None:
        fail("ae2-returned-none")
    if not isinstance(outcome.value, Post):
        fail("ae2-returned-other", got=type(outcome.value).__name__)


# --- AE3: expire_on_commit=False -----------------------------------------------------------------


@pytest.mark.rule("AE3")
async def test_a_post_stays_readable_after_create_post_commits_it(load, seeded_db):
    """After commit, the new post's id, title and content read without a query."""
    module = load(seeded_db.plain_url)
    create_post = require(module, "create_post", "create-post-none")
    title, content = f"Still readable {random.randint(1000, 9999)}", f"After commit {_RUN}."

    session = new_session(module)
    try:
        created = await attempt(lambda: create_post(session, PostCreate(title=title, content=content)))
        crashed(created)
        post = created.value
        if not isinstance(post, Post):
            fail("ae3-no-post", got=repr(post))
        read = await attempt(lambda: (post.id, post.title, post.content))
    finally:
        await session.close()

    if read.missing_greenlet:
        fail("ae3-expired")
    crashed(read)
    if not isinstance(read.value[0], int) or read.value[1:] != (title, content):
        fail("ae3-wrong-post", got=repr(read.value), title=title, content=content)


@pytest.mark.rule("AE3")
async def test_an_endpoint_can_return_the_object_it_just_committed(load, loaded, seeded_db):
    """An endpoint that commits and returns the object gets a response, not a 500."""
    module = load(seeded_db.plain_url)
    app = app_with(module, loaded)
    post_id, title = random.choice(list(seed.POSTS)), f"Renamed {random.randint(1000, 9999)}"

    async with client_for(app) as client:
        request = client.put(f"/posts/{post_id}/title", params={"title": title})
        outcome = await attempt(lambda: within(5, request, f"PUT /posts/{post_id}/title", "AE3"))

    if outcome.missing_greenlet:
        fail("ae3-endpoint-expired", post_id=post_id)
    crashed(outcome)
    response = outcome.value
    if response.status_code != 200 or response.json().get("title") != title:
        fail("ae3-endpoint-answer", post_id=post_id, status=response.status_code,
             body=response.text[:200], title=title)


# --- AE4: one session per request, always closed -------------------------------------------------


@pytest.mark.rule("AE4")
async def test_each_request_gets_its_own_session_on_async_engine_and_gives_its_connection_back(
    load, loaded, seeded_db
):
    """Five requests get five sessions on async_engine; afterwards no connection is checked out."""
    module = load(seeded_db.plain_url)
    engine = engine_of(module)
    pool = PoolWatch(engine)
    app = app_with(module, loaded)
    ids = random.sample(list(seed.POSTS), 5)

    async def five_requests():
        async with client_for(app) as client:
            return [await client.get(f"/posts/{post_id}") for post_id in ids]

    outcome = await attempt(lambda: within(5, five_requests(), MSG("what-five-gets"), "AE4"))
    crashed(outcome)

    statuses = [r.status_code for r in outcome.value]
    if statuses != [200] * 5:
        fail("ae4-statuses", statuses=statuses)
    sessions = {id(s) for s in loaded.sessions}
    if len(sessions) != 5:
        fail("ae4-shared-session", sessions=len(sessions))
    elsewhere = sum(1 for s in loaded.sessions if getattr(s, "bind", None) is not engine)
    if pool.checkouts < 5:
        fail("ae4-other-engine" if elsewhere else "ae4-no-connection", checkouts=pool.checkouts,
             elsewhere=elsewhere)
    if pool.outstanding:
        fail("ae4-not-closed", outstanding=pool.outstanding, checkouts=pool.checkouts,
             checkins=pool.checkins)


@pytest.mark.rule("AE4")
async def test_a_request_that_raises_rolls_back_and_still_gives_its_connection_back(
    load, loaded, seeded_db, committed
):
    """An endpoint that writes and then raises: the write is not saved, the connection goes back."""
    module = load(seeded_db.plain_url)
    engine = engine_of(module)
    pool = PoolWatch(engine)
    app = app_with(module, loaded)

    # raise_app_exceptions=False: the client gets the 500 a real client would get.
    async with client_for(app, raise_app_exceptions=False) as client:
        request = client.post("/posts/fail")
        outcome = await attempt(lambda: within(5, request, "POST /posts/fail", "AE4"))
    crashed(outcome)

    if outcome.value.status_code != 500:
        fail("ae4-not-500", status=outcome.value.status_code)
    if await committed("Never saved"):
        fail("ae4-failed-write-saved")
    elsewhere = sum(1 for s in loaded.sessions if getattr(s, "bind", None) is not engine)
    if pool.checkouts < 1:
        fail("ae4-other-engine" if elsewhere else "ae4-no-connection", checkouts=pool.checkouts,
             elsewhere=elsewhere)
    if pool.outstanding:
        fail("ae4-not-closed-on-error", outstanding=pool.outstanding)
