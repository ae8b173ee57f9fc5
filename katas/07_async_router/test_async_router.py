"""Specs of kata 07: the async post router (rules RT1-RT4, LZ3). Do not edit: edit
routers/async_post_router.py.

Each spec builds a fresh FastAPI app around your `router`, on its own copy of the seeded blog
database (kata_blog/seed.py), and swaps kata_blog.database.get_async_db for a session on that copy. Requests
go through httpx.ASGITransport, inside the spec's own event loop: an exception in your route
reaches the spec as it was raised, where a real server would answer 500 (one spec runs uvicorn on
127.0.0.1 to show exactly that). Eager loading is checked by counting SQL statements.
"""

import asyncio
import socket
import threading
import traceback
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError
from sqlalchemy import event, text
from sqlalchemy.exc import MissingGreenlet, NoResultFound
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from kata_blog import seed
from kata_blog.database import get_async_db

pytestmark = pytest.mark.asyncio

ANSWER_WITHIN = 5.0  # seconds a request may take before the spec calls it hung
MISSING = 999  # no post has this id
UPDATE = {"title": "Event loops, revised", "content": "Still one thread, still many waits."}


@pytest.fixture
def kata(kata_module):
    return kata_module("routers/async_post_router.py")


@pytest_asyncio.fixture
async def engine(seeded_db):
    engine = create_async_engine(seeded_db.async_url)
    yield engine
    await engine.dispose()


def build_app(router, new_session, lifespan=None) -> FastAPI:
    """A fresh app with the learner's router, its sessions coming from `new_session()`."""

    async def session_on_the_spec_database():
        async with new_session() as session:
            yield session

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    app.dependency_overrides[get_async_db] = session_on_the_spec_database
    return app


@pytest_asyncio.fixture
async def client(kata, engine):
    app = build_app(kata.router, async_sessionmaker(engine, expire_on_commit=False))
    transport = httpx.ASGITransport(app=app)  # app exceptions reach the spec as they are
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


# --- helpers ------------------------------------------------------------------------------------


@dataclass
class Answer:
    """What one request gave: a response, or the exception the route raised."""

    request: str  # "GET /async/posts/1/selectin"
    status: int | None = None
    body: object = None
    error: BaseException | None = None
    never_awaited: list[str] = field(default_factory=list)  # "coroutine ... was never awaited"

    @property
    def failed_on_a_lazy_load(self) -> bool:
        """MissingGreenlet, raised in the route or inside FastAPI's response validation."""
        if isinstance(self.error, MissingGreenlet):
            return True
        return isinstance(self.error, ResponseValidationError) and any(
            "MissingGreenlet" in str(err.get("msg", "")) for err in self.error.errors()
        )

    def describe(self) -> str:
        """One sentence a learner can act on: what the request gave, with figures."""
        said = self._what_happened()
        if self.never_awaited:
            said += f" (and Python warned: {self.never_awaited[0]})"
        return said

    def _what_happened(self) -> str:
        error = self.error
        if error is None:
            body = str(self.body)
            return f"{self.request} answered {self.status}: {body[:160]}{'...' if len(body) > 160 else ''}"
        if self.failed_on_a_lazy_load:
            return (
                f"{self.request} failed with MissingGreenlet: reading post.comments or post.tags "
                f"needed a lazy load, which async code cannot run; a client gets 500"
            )
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        if isinstance(error, NotImplementedError):
            return f"{self.request} is not written yet: it raises NotImplementedError({first_line})"
        if isinstance(error, NoResultFound):
            return (
                f"{self.request} raised NoResultFound: `.one()` found no post, and a client "
                f"gets 500"
            )
        if isinstance(error, ResponseValidationError) and error.errors():
            first = error.errors()[0]
            return (
                f"{self.request} returned {str(first.get('input'))[:60]!r}, which FastAPI could "
                f"not turn into the response model ({first.get('msg')}); a client gets 500"
            )
        return f"{self.request} crashed with {type(error).__name__}: {first_line}; a client gets 500"


def _release(error: BaseException) -> None:
    """Let go of what a failed request's exceptions hold: their frames' locals, and the object of
    an AttributeError (`'coroutine' object has no attribute 'all'` holds that coroutine)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        if isinstance(error, AttributeError):
            error.obj = None
        error = error.__cause__ or error.__context__


async def send(client: httpx.AsyncClient, method: str, url: str, **kwargs) -> Answer:
    """One request; an exception from the app, a hang, an un-awaited coroutine become facts."""
    request = f"{method} {url}"
    answer = Answer(request)
    with warnings.catch_warnings(record=True) as caught:
        # A coroutine that was never awaited (db.commit() without await) is recorded, not raised.
        warnings.filterwarnings("always", r"coroutine .* was never awaited", RuntimeWarning)
        try:
            response = await asyncio.wait_for(
                client.request(method, url, **kwargs), ANSWER_WITHIN
            )
        except asyncio.TimeoutError:
            pytest.fail(
                f"{request} did not answer within {ANSWER_WITHIN:.0f} s: the route waits for "
                f"something that never comes, e.g. a connection the pool never gets back (a "
                f"session or connection opened outside `async with`, never closed), or an await "
                f"on a future or lock nobody sets.",
                pytrace=False,
            )
        except Exception as e:  # the route raised: ASGITransport hands it to us
            answer.error = e
            # A coroutine left un-awaited in those frames warns when freed: free it now, while
            # warnings are recorded, not in some later spec.
            _release(e)
        else:
            answer.status = response.status_code
            try:
                answer.body = response.json()
            except ValueError:
                answer.body = response.text
    answer.never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    return answer


async def read_post(engine, post_id: int) -> tuple[str, str]:
    """Title and content of a post as stored: read on a connection of its own, after the request."""
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT title, content FROM posts WHERE id = :id"), {"id": post_id}
        )
        return tuple(result.one())


class StatementCounter:
    """Counts the SQL statements the engine sends (the cursor executions)."""

    def __init__(self, engine):
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, connection, cursor, statement, parameters, context, executemany):
        self.count += 1


def fields(body, *keys) -> tuple:
    """These keys of a JSON object body (None for a missing key, or a body that is no object)."""
    return tuple(body.get(key) if isinstance(body, dict) else None for key in keys)


def comments_and_tags(body) -> tuple[list[str], list[str]]:
    """The comment texts and tag names of a PostDetailResponse body, sorted."""
    comments, tags = fields(body, "comments", "tags")
    return (
        sorted(str(fields(c, "content")[0]) for c in comments or []),
        sorted(str(fields(t, "name")[0]) for t in tags or []),
    )


def seeded_comments_and_tags(post_id: int) -> tuple[list[str], list[str]]:
    return sorted(seed.comments_of(post_id)), sorted(seed.tags_of(post_id))


# --- RT1: the list ------------------------------------------------------------------------------


@pytest.mark.rule("RT1")
async def test_the_list_returns_every_post_with_id_title_and_content(client):
    """GET /async/posts/ answers 200 with every post, as PostListResponse (id, title, content)."""
    answer = await send(client, "GET", "/async/posts/")

    assert answer.status == 200, (
        f"{answer.describe()}. The list route awaits the query inside `async def`: "
        f"`result = await db.scalars(select(Post))`, then `result.all()` (RT1)."
    )
    got = {fields(p, "id")[0]: fields(p, "title", "content") for p in answer.body}
    assert got == seed.POSTS, (
        f"GET /async/posts/ listed {got}; the seeded database holds {seed.POSTS}. "
        f"Return every post of `select(Post)` (RT1)."
    )
    keys = {key for post in answer.body if isinstance(post, dict) for key in post}
    assert keys == {"id", "title", "content"}, (
        f"GET /async/posts/ answered posts with the keys {sorted(keys)}; a list item is a "
        f"PostListResponse (id, title, content): declare response_model=list[PostListResponse] "
        f"(RT1)."
    )


# --- RT2: GET lazy fails, GET selectin loads comments and tags ----------------------------------


@pytest.mark.rule("RT2")
async def test_the_lazy_detail_fails_because_comments_and_tags_were_never_loaded(client):
    """GET .../lazy fails with MissingGreenlet: the response reads relationships nobody loaded."""
    answer = await send(client, "GET", "/async/posts/1/lazy")

    assert answer.failed_on_a_lazy_load, (
        f"{answer.describe()}. The lazy route is the notes' demonstration and must keep failing "
        f"the way lazy loading fails in async code: load the post alone (`await db.get(Post, "
        f"post_id)`), return it, and let PostDetailResponse trip over post.comments "
        f"(MissingGreenlet). Eager loading belongs in /selectin (RT2)."
    )


@pytest.mark.rule("RT2")
async def test_the_selectin_detail_returns_the_comments_and_tags_of_each_post(client):
    """GET .../selectin answers PostDetailResponse with the post's comments and tags, for every post."""
    for post_id, (title, content) in seed.POSTS.items():
        answer = await send(client, "GET", f"/async/posts/{post_id}/selectin")
        assert answer.status == 200, (
            f"{answer.describe()}. Load what PostDetailResponse reads in the query itself: "
            f"select(Post).where(Post.id == post_id).options(selectinload(Post.comments), "
            f"selectinload(Post.post_tags).selectinload(PostTag.tag)) (RT2)."
        )
        got = fields(answer.body, "id", "title", "content")
        assert got == (post_id, title, content), (
            f"GET /async/posts/{post_id}/selectin answered id, title, content {got}; the seed "
            f"has {(post_id, title, content)}: select the post whose id is in the path (RT2)."
        )
        expected = seeded_comments_and_tags(post_id)
        assert comments_and_tags(answer.body) == expected, (
            f"GET /async/posts/{post_id}/selectin answered comments and tags "
            f"{comments_and_tags(answer.body)}; post {post_id} has {expected} (RT2)."
        )


@pytest.mark.rule("RT2")
async def test_the_selectin_detail_takes_the_same_number_of_statements_however_many_tags(
    client, engine
):
    """A detail GET costs a fixed number of statements, not one more per comment or tag (no N+1)."""
    statements = StatementCounter(engine)
    counts = {}
    for post_id in (3, 1, 4):  # 1, 2 and 3 tags; 1, 3 and 2 comments
        before = statements.count
        answer = await send(client, "GET", f"/async/posts/{post_id}/selectin")
        assert answer.status == 200, f"{answer.describe()}. Eager-load comments and tags (RT2)."
        counts[post_id] = statements.count - before

    tags = {post_id: len(seed.tags_of(post_id)) for post_id in counts}
    assert len(set(counts.values())) == 1, (
        f"GET .../selectin sent {counts} SQL statements for posts {list(counts)} (post id: "
        f"count), which have {tags} tags: the count grows with the rows, one query per tag "
        f"(N+1). Load all of them with the post: selectinload(Post.post_tags)"
        f".selectinload(PostTag.tag) issues one query for every tag at once (RT2)."
    )


@pytest.mark.rule("RT2")
@pytest.mark.timeout(20)
async def test_a_real_client_gets_500_from_lazy_and_the_comments_from_selectin(kata, seeded_db):
    """Over real HTTP (uvicorn), GET .../lazy is a 500 and GET .../selectin a 200 with comments."""
    async with real_server(kata.router, seeded_db.async_url) as base_url:
        lazy = await get_over_http(base_url, "/async/posts/1/lazy")
        selectin = await get_over_http(base_url, "/async/posts/1/selectin")

    assert lazy.status_code == 500, (
        f"Over real HTTP, GET /async/posts/1/lazy answered {lazy.status_code}: {lazy.text[:160]}. "
        f"A real client sees the lazy route fail as 500 Internal Server Error: keep it loading "
        f"the post alone (RT2)."
    )
    assert selectin.status_code == 200, (
        f"Over real HTTP, GET /async/posts/1/selectin answered {selectin.status_code}: "
        f"{selectin.text[:160]}. Eager-load comments and tags in the query (RT2)."
    )
    expected = seeded_comments_and_tags(1)
    assert comments_and_tags(selectin.json()) == expected, (
        f"Over real HTTP, GET /async/posts/1/selectin answered comments and tags "
        f"{comments_and_tags(selectin.json())}; post 1 has {expected} (RT2)."
    )


async def get_over_http(base_url: str, path: str) -> httpx.Response:
    """A GET from a real HTTP client, on a connection of its own."""
    # A new connection per request: after a 500, uvicorn may close a kept-alive one under us.
    async with httpx.AsyncClient(base_url=base_url, timeout=ANSWER_WITHIN) as http:
        try:
            return await http.get(path)
        except httpx.TimeoutException:
            pytest.fail(
                f"Over real HTTP, GET {path} did not answer within {ANSWER_WITHIN:.0f} s: the "
                f"route waits for something that never comes, e.g. a connection the pool never "
                f"gets back, or an await on a future or lock nobody sets.",
                pytrace=False,
            )


@asynccontextmanager
async def real_server(router, database_url):
    """uvicorn serving the learner's router on 127.0.0.1 (a free port), in a thread of its own.

    The server runs its own event loop, so its engine is made and disposed there (in the app's
    lifespan), never shared with the spec's loop.
    """

    @asynccontextmanager
    async def lifespan(app):
        engine = create_async_engine(database_url)
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        yield
        await engine.dispose()

    app = build_app(router, lambda: app.state.sessions(), lifespan)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        log_level="critical",  # the lazy route's traceback is expected here, not news
        access_log=False,
        timeout_graceful_shutdown=2,  # a hung route must not hold the shutdown
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # up to 5 s
            if server.started or not thread.is_alive():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            pytest.fail("uvicorn did not start within 5 s on 127.0.0.1 (RT2).", pytrace=False)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
        sock.close()


# --- RT3: PUT selectin updates, commits, answers the detail -------------------------------------


@pytest.mark.rule("RT3")
async def test_put_selectin_answers_with_the_update_and_commits_it(client, engine):
    """PUT .../selectin answers 200 with the new title and content, and they are in the database."""
    answer = await send(client, "PUT", "/async/posts/2/selectin", json=UPDATE)
    stored = await read_post(engine, 2)

    assert answer.status == 200, (
        f"{answer.describe()}. PUT .../selectin loads the post, sets title and content from the "
        f"PostCreate body, awaits db.commit(), then queries the post again with its comments "
        f"and tags and returns that (RT3)."
    )
    got = dict(zip(("id", "title", "content"), fields(answer.body, "id", "title", "content")))
    assert got == {"id": 2, **UPDATE}, (
        f"PUT /async/posts/2/selectin with {UPDATE} answered {got}: answer with the post as it "
        f"is after the update (RT3)."
    )
    assert stored == (UPDATE["title"], UPDATE["content"]), (
        f"{answer.describe()}. Yet the database still holds {stored}: the update was never "
        f"committed, and every later request sees the old post. `await db.commit()` after "
        f"setting title and content: without await, commit never runs and the session rolls "
        f"the change back when it closes (RT3)."
    )


# --- LZ3: after commit, answer from an eager-loaded query -----------------------------------------


@pytest.mark.rule("LZ3")
async def test_put_selectin_answers_with_comments_and_tags_loaded_after_the_commit(client):
    """PUT .../selectin builds its response without a lazy load: comments and tags are loaded."""
    answer = await send(client, "PUT", "/async/posts/4/selectin", json=UPDATE)

    assert not answer.failed_on_a_lazy_load, (
        f"{answer.describe()}. The updated post was returned with its relationships never "
        f"loaded. After `await db.commit()`, query it again with selectinload(Post.comments) "
        f"and selectinload(Post.post_tags).selectinload(PostTag.tag), and return that (LZ3)."
    )
    assert answer.status == 200, (
        f"{answer.describe()}. Answer with the post queried again after the commit, its "
        f"comments and tags loaded by that query (LZ3)."
    )
    expected = seeded_comments_and_tags(4)
    assert comments_and_tags(answer.body) == expected, (
        f"PUT /async/posts/4/selectin answered comments and tags {comments_and_tags(answer.body)}; "
        f"an update of title and content leaves post 4's {expected} as they were (LZ3)."
    )


@pytest.mark.rule("LZ3")
async def test_the_lazy_put_commits_then_fails_so_the_client_gets_500_for_a_saved_change(
    client, engine
):
    """PUT .../lazy commits, then fails building its response: a 500, yet the update is saved."""
    answer = await send(client, "PUT", "/async/posts/2/lazy", json=UPDATE)
    stored = await read_post(engine, 2)

    assert answer.failed_on_a_lazy_load, (
        f"{answer.describe()}. The lazy PUT is the notes' demonstration: update, await "
        f"db.commit(), return the post whose comments and tags were never loaded, and fail "
        f"building the response (MissingGreenlet). Keep it that way; eager loading belongs in "
        f"PUT .../selectin (LZ3)."
    )
    assert stored == (UPDATE["title"], UPDATE["content"]), (
        f"After PUT /async/posts/2/lazy the database holds {stored}, not the update: the lazy "
        f"PUT must await db.commit() before it returns the post. That is the lesson: the "
        f"client gets 500, yet the change is saved (LZ3)."
    )


# --- RT4: bad input is 404 or 422, never 500 --------------------------------------------------------


@pytest.mark.rule("RT4")
async def test_a_missing_post_is_404_on_every_detail_and_update_route(client):
    """A post id that does not exist answers 404 on all four routes, the lazy ones included."""
    answers = [
        await send(client, "GET", f"/async/posts/{MISSING}/lazy"),
        await send(client, "GET", f"/async/posts/{MISSING}/selectin"),
        await send(client, "PUT", f"/async/posts/{MISSING}/lazy", json=UPDATE),
        await send(client, "PUT", f"/async/posts/{MISSING}/selectin", json=UPDATE),
    ]
    wrong = [a.describe() for a in answers if a.status != 404]
    assert not wrong, (
        f"Post {MISSING} does not exist, yet: " + "; ".join(wrong) + ". A missing post is the "
        f"client's mistake: check for it before anything else (`db.get` returns None, "
        f"`result.one_or_none()` too) and raise HTTPException(status_code=404) (RT4)."
    )


@pytest.mark.rule("RT4")
async def test_an_invalid_body_or_id_is_422_and_changes_nothing(client, engine):
    """An invalid PUT body or a non-numeric id answers 422, and the post stays as it was."""
    url = "/async/posts/1/selectin"
    answers = [
        await send(client, "PUT", url, json={"title": "", "content": "An empty title."}),
        await send(client, "PUT", url, json={"title": "No content"}),
        await send(client, "PUT", url, json={"title": "x" * 201, "content": "Title too long."}),
        await send(client, "PUT", url, content=b"not json", headers={"content-type": "application/json"}),
        await send(client, "GET", "/async/posts/one/selectin"),
    ]
    wrong = [a.describe() for a in answers if a.status != 422]
    assert not wrong, (
        "Invalid input must be 422, before the route runs: " + "; ".join(wrong) + ". Declare "
        "the body as `data: PostCreate` (title 1-200 characters, content not empty) and the id "
        "as `post_id: int`; FastAPI then rejects bad input itself (RT4)."
    )
    stored = await read_post(engine, 1)
    assert stored == seed.POSTS[1], (
        f"After only invalid PUTs, post 1 holds {stored} instead of {seed.POSTS[1]}: invalid "
        f"input must change nothing (RT4)."
    )
