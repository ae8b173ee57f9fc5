"""Specs of kata 05: the async engine (rules AE1-AE4). Do not edit: edit async_database.py.

async_database.py builds its engine when it is imported, from DATABASE_URL, as the course notes'
module does. So every spec sets DATABASE_URL first, imports a fresh copy of the module, and
disposes that copy's engine afterwards. Each spec that connects gets its own copy of the seeded
blog database. The checks count what really happened: which driver answered, how many pool
connections were lent and given back, which rows another connection can see.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

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
from kata_tools.attempts import attempt
from kata_tools.loader import import_file, module_name, source_root

pytestmark = pytest.mark.asyncio

FILE = "async_database.py"
# A URL of the kind a DATABASE_URL holds. Nothing connects to it: creating an engine opens no
# connection, so the URL specs read what the module made of it.
FAKE = "kata:s3cret@db.example:6543/blog"


# --- running learner code ------------------------------------------------------------------------




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
            pytest.fail(
                f"With DATABASE_URL={shown(database_url)}, importing the module failed at "
                f"{failure[0]}: {failure[1]}. create_async_engine loads the driver its URL "
                f"names, and that must be asyncpg whatever driver DATABASE_URL names (AE1).",
                pytrace=False,
            )
        loaded.modules.append(module)
        return module

    return load


def shown(url: str) -> str:
    return url if len(url) < 60 else url[:57] + "..."


def require(module, name: str, how: str):
    value = vars(module).get(name)
    if value is None:
        pytest.fail(f"async_database.{name} is still None: {how}", pytrace=False)
    return value


def engine_of(module) -> AsyncEngine:
    engine = require(
        module, "async_engine", "create it with create_async_engine(ASYNC_DATABASE_URL, ...) (AE2)."
    )
    if not isinstance(engine, AsyncEngine):
        pytest.fail(
            f"async_database.async_engine is a {type(engine).__name__}, not an AsyncEngine: "
            f"async code cannot await a sync engine. Build it with create_async_engine (AE2).",
            pytrace=False,
        )
    return engine


def new_session(module) -> AsyncSession:
    """A session from the learner's AsyncSessionLocal, checked to be an AsyncSession."""
    engine_of(module)  # a sync engine would fail inside AsyncSession() with a bare ArgumentError
    factory = require(
        module,
        "AsyncSessionLocal",
        "make it with async_sessionmaker(bind=async_engine, class_=AsyncSession, "
        "expire_on_commit=...) (AE2).",
    )
    session = factory()
    if not isinstance(session, AsyncSession):
        if hasattr(session, "close"):
            session.close()  # a sync Session that never connected: nothing to give back
        pytest.fail(
            f"AsyncSessionLocal() made a {type(session).__module__}.{type(session).__name__}, "
            f"not an AsyncSession: its queries cannot be awaited. Use async_sessionmaker "
            f"(or class_=AsyncSession) bound to async_engine (AE2).",
            pytrace=False,
        )
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
    get_async_db = require(module, "get_async_db", "write the dependency (AE4).")
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
        pytest.fail(
            f"{what} did not finish within {seconds} s. The likely cause: a wait for a pool "
            f"connection that is never given back (a session that is never closed) ({rule}).",
            pytrace=False,
        )


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

    assert vars(module).get("SYNC_DATABASE_URL") == given, (
        f"SYNC_DATABASE_URL is {vars(module).get('SYNC_DATABASE_URL')!r}; it must be DATABASE_URL "
        f"exactly as the environment holds it ({given!r}) (AE1)."
    )
    async_url = vars(module).get("ASYNC_DATABASE_URL")
    assert async_url is not None, (
        "ASYNC_DATABASE_URL is still None: derive it from SYNC_DATABASE_URL (AE1)."
    )
    url = make_url(async_url)
    assert url.drivername == "postgresql+asyncpg", (
        f"From DATABASE_URL={given!r}, ASYNC_DATABASE_URL names the driver {url.drivername!r}; "
        f"an async engine needs 'postgresql+asyncpg'. Replacing the text 'postgresql://' misses "
        f"URLs that already name a driver: set the driver part, whatever it was (AE1)."
    )
    assert url.password == "s3cret", (
        f"ASYNC_DATABASE_URL lost the password: it reads {url.password!r}, not 's3cret'. "
        f"str() of a sqlalchemy URL masks the password as ***; keep the URL object or use "
        f"url.render_as_string(hide_password=False) (AE1)."
    )
    parts = (url.username, url.host, url.port, url.database)
    assert parts == ("kata", "db.example", 6543, "blog"), (
        f"ASYNC_DATABASE_URL points elsewhere: user, host, port, database = {parts}, expected "
        f"('kata', 'db.example', 6543, 'blog'). Change only the driver (AE1)."
    )
    engine = engine_of(module)
    built_on = (engine.url.drivername, engine.url.host, engine.url.database)
    assert built_on == ("postgresql+asyncpg", "db.example", "blog"), (
        f"async_engine was built on {engine.url!r}, not on ASYNC_DATABASE_URL: pass it to "
        f"create_async_engine (AE1)."
    )


@pytest.mark.rule("AE1")
async def test_the_engine_runs_its_queries_through_asyncpg(load, seeded_db):
    """A query through async_engine runs on an asyncpg connection to the DATABASE_URL database."""
    engine = engine_of(load(seeded_db.plain_url))

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = type(raw.driver_connection).__module__.split(".")[0]
        database = (await conn.execute(text("SELECT current_database()"))).scalar_one()

    assert driver == "asyncpg", (
        f"async_engine's connections come from {driver!r}, not asyncpg: the async engine must "
        f"use the asyncpg driver (AE1)."
    )
    assert database == seeded_db.name, (
        f"async_engine is connected to database {database!r}, not to the one DATABASE_URL names "
        f"({seeded_db.name!r}): build ASYNC_DATABASE_URL from DATABASE_URL (AE1)."
    )


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


def import_copy(folder: Path, loaded: Loaded, situation: str):
    try:
        module = import_file(folder / FILE, module_name("05_async_engine", FILE) + "__dotenv")
    except pytest.fail.Exception as e:
        failure = import_failure(e)
        reason = failure[1] if failure else str(e)
        pytest.fail(
            f"{situation}, importing async_database.py failed ({reason}). Call load_dotenv() "
            f"before reading os.environ (AE1).",
            pytrace=False,
        )
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

    module = import_copy(project_dir, loaded, "With DATABASE_URL only in a .env file")

    assert vars(module).get("SYNC_DATABASE_URL") == f"postgresql://{FAKE}", (
        f"With DATABASE_URL only in .env, SYNC_DATABASE_URL is "
        f"{vars(module).get('SYNC_DATABASE_URL')!r}. Load the .env file (python-dotenv's "
        f"load_dotenv()) before reading the environment (AE1)."
    )
    async_url = vars(module).get("ASYNC_DATABASE_URL")
    assert async_url is not None and make_url(async_url).host == "db.example", (
        f"With DATABASE_URL from .env, ASYNC_DATABASE_URL is {async_url!r}; derive it from "
        f"SYNC_DATABASE_URL (AE1)."
    )


@pytest.mark.rule("AE1")
async def test_the_environment_wins_over_the_dotenv_file(project_dir, monkeypatch, loaded):
    """A DATABASE_URL set in the environment beats the one in .env (a deployment sets it)."""
    (project_dir / ".env").write_text("DATABASE_URL=postgresql://dev:dev@localhost/dev_blog\n")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://{FAKE}")

    module = import_copy(project_dir, loaded, "With DATABASE_URL in the environment and in .env")

    got = vars(module).get("SYNC_DATABASE_URL")
    assert got == f"postgresql://{FAKE}", (
        f"DATABASE_URL in the environment is postgresql://{FAKE}, in .env the local dev_blog; "
        f"SYNC_DATABASE_URL took {got!r}. The environment must win (a server sets it; .env is "
        f"the developer's default): do not load .env with override=True (AE1)."
    )


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
        titles = (await session.scalars(select(Post.title).order_by(Post.id))).all()
    finally:
        await session.close()

    expected = [title for title, _ in seed.POSTS.values()]
    assert titles == expected, (
        f"select(Post.title) through an AsyncSessionLocal() session returned {titles!r}, "
        f"expected the {len(expected)} seeded titles (AE2)."
    )
    assert pool.checkouts >= 1, (
        "The session's query did not take a connection from async_engine's pool: bind "
        "AsyncSessionLocal to async_engine (AE2)."
    )


@pytest.mark.rule("AE2")
async def test_create_post_awaits_its_commit_so_another_connection_sees_the_post(
    load, seeded_db, committed
):
    """create_post awaits commit: the new post is saved, and no coroutine is left un-awaited."""
    module = load(seeded_db.plain_url)
    engine_of(module)
    create_post = require(module, "create_post", "write it (AE2).")

    session = new_session(module)
    try:
        data = PostCreate(title="Saved by create_post", content="Kata 05.")
        outcome = await attempt(lambda: create_post(session, data))
    finally:
        await session.close()

    assert not outcome.unawaited, (
        f"create_post called {outcome.unawaited[0]}() without await: that only creates a "
        f"coroutine, which never runs, so nothing was saved. Await every call that talks to the "
        f"database (AE2)."
    )
    outcome.fail_if_crashed("AE2")
    saved = await committed("Saved by create_post")
    assert saved == 1, (
        f"After create_post, another connection sees {saved} post(s) titled 'Saved by "
        f"create_post', expected 1: create_post must add the post and await db.commit() (AE2)."
    )


# --- AE3: expire_on_commit=False -----------------------------------------------------------------


@pytest.mark.rule("AE3")
async def test_a_post_stays_readable_after_create_post_commits_it(load, seeded_db):
    """After commit, the new post's id, title and content read without a query."""
    module = load(seeded_db.plain_url)
    create_post = require(module, "create_post", "write it (AE2).")

    session = new_session(module)
    try:
        data = PostCreate(title="Still readable", content="After commit.")
        created = await attempt(lambda: create_post(session, data))
        created.fail_if_crashed("AE3")
        post = created.value
        read = await attempt(lambda: (post.id, post.title, post.content))
    finally:
        await session.close()

    assert not read.missing_greenlet, (
        "Reading post.title after create_post's commit raised MissingGreenlet: the commit "
        "expired every attribute, and reloading one needs a query that a plain attribute read "
        "cannot await. Make AsyncSessionLocal with expire_on_commit=False (AE3)."
    )
    read.fail_if_crashed("AE3")
    expected = ("Still readable", "After commit.")
    assert isinstance(read.value[0], int) and read.value[1:] == expected, (
        f"create_post returned a post reading (id, title, content) = {read.value!r}; return the "
        f"Post after its commit, with the id the database gave it (AE3)."
    )


@pytest.mark.rule("AE3")
async def test_an_endpoint_can_return_the_object_it_just_committed(load, loaded, seeded_db):
    """An endpoint that commits and returns the object gets a response, not a 500."""
    module = load(seeded_db.plain_url)
    app = app_with(module, loaded)

    async with client_for(app) as client:
        request = client.put("/posts/1/title", params={"title": "Renamed"})
        outcome = await attempt(lambda: within(5, request, "PUT /posts/1/title", "AE3"))

    assert not outcome.missing_greenlet, (
        "PUT /posts/1/title committed, then building the response from the post raised "
        "MissingGreenlet: a client gets a 500. The commit expired the post's attributes; make "
        "AsyncSessionLocal with expire_on_commit=False (AE3)."
    )
    outcome.fail_if_crashed("AE3")
    response = outcome.value
    assert response.status_code == 200 and response.json()["title"] == "Renamed", (
        f"PUT /posts/1/title answered {response.status_code} {response.text[:200]}; expected "
        f"200 with the new title (AE3)."
    )


# --- AE4: one session per request, always closed -------------------------------------------------


@pytest.mark.rule("AE4")
async def test_each_request_gets_its_own_session_and_gives_its_connection_back(
    load, loaded, seeded_db
):
    """Five requests get five sessions; afterwards no connection is left checked out."""
    module = load(seeded_db.plain_url)
    pool = PoolWatch(engine_of(module))
    app = app_with(module, loaded)

    async def five_requests():
        async with client_for(app) as client:
            return [await client.get(f"/posts/{post_id}") for post_id in range(1, 6)]

    outcome = await attempt(lambda: within(5, five_requests(), "Five GET requests", "AE4"))
    outcome.fail_if_crashed("AE4")

    statuses = [r.status_code for r in outcome.value]
    assert statuses == [200] * 5, f"GET /posts/1..5 answered {statuses}; expected five 200s (AE4)."
    sessions = {id(s) for s in loaded.sessions}
    assert len(sessions) == 5, (
        f"Five requests were served by {len(sessions)} session(s). A session is not safe to "
        f"share between requests: open a new one per request inside get_async_db (AE4)."
    )
    assert pool.outstanding == 0, (
        f"After five requests had their responses, {pool.outstanding} connection(s) were still "
        f"checked out of the pool ({pool.checkouts} lent, {pool.checkins} returned). Close each "
        f"session after the response: yield it inside `async with AsyncSessionLocal() as "
        f"session:` (AE4)."
    )


@pytest.mark.rule("AE4")
async def test_a_request_that_raises_rolls_back_and_still_gives_its_connection_back(
    load, loaded, seeded_db, committed
):
    """An endpoint that writes and then raises: the write is not saved, the connection goes back."""
    module = load(seeded_db.plain_url)
    pool = PoolWatch(engine_of(module))
    app = app_with(module, loaded)

    # raise_app_exceptions=False: the client gets the 500 a real client would get.
    async with client_for(app, raise_app_exceptions=False) as client:
        request = client.post("/posts/fail")
        outcome = await attempt(lambda: within(5, request, "POST /posts/fail", "AE4"))
    outcome.fail_if_crashed("AE4")

    assert outcome.value.status_code == 500, (
        f"POST /posts/fail answered {outcome.value.status_code}; the endpoint raises, so a "
        f"client gets 500 (AE4)."
    )
    saved = await committed("Never saved")
    assert saved == 0, (
        "The endpoint raised after writing a post, yet the post was committed: the dependency "
        "must not commit when the request failed. Closing the session rolls back whatever was "
        "not committed (AE4)."
    )
    assert pool.outstanding == 0, (
        f"After the failing request, {pool.outstanding} connection(s) were still checked out: "
        f"when the endpoint raises, the exception comes out of your `yield`, so code after it "
        f"never runs. Let `async with AsyncSessionLocal() as session:` (or try/finally) close "
        f"the session (AE4)."
    )
