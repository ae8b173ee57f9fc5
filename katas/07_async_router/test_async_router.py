"""Specs of kata 07: the async post router (rules RT1-RT4, LZ3). Do not edit: edit
routers/async_post_router.py.

Each spec builds a fresh FastAPI app around your `router`, on its own copy of the seeded blog
database (kata_blog/seed.py), and swaps kata_blog.database.get_async_db for a session on that copy. Requests
go through httpx.ASGITransport, inside the spec's own event loop: an exception in your route
reaches the spec as it was raised, where a real server would answer 500 (one spec runs uvicorn on
127.0.0.1 to show exactly that). Eager loading is checked by counting SQL statements.
"""

import asyncio
import random
import socket
import string
import threading
import traceback
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError
from sqlalchemy import event, text
from sqlalchemy.exc import MissingGreenlet, NoResultFound
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from kata_blog import seed
from kata_blog.database import get_async_db
from kata_tools.i18n import catalog
from kata_tools.serving import ServerDidNotStart, serving

pytestmark = pytest.mark.asyncio
MSG = catalog(__file__)

ANSWER_WITHIN = 5.0  # seconds a request may take before the spec calls it hung


def missing_id() -> int:
    """An id no post has (varied, so no answer can be written for one number)."""
    return random.randint(max(seed.POSTS) + 100, 99_999)


def new_update() -> dict:
    """A PostCreate body of its own for this run."""
    tail = "".join(random.choices(string.ascii_lowercase, k=6))
    return {"title": f"Revised {tail}", "content": f"Still one thread, {tail} waits."}


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
    if new_session is not None:
        app.dependency_overrides[get_async_db] = session_on_the_spec_database
    return app


_APPS: dict[int, tuple[object, FastAPI]] = {}


def app_for(router) -> FastAPI:
    """One app per learner router for the whole run, its session dependency set by each spec.

    Building an app costs 10-20 ms a spec (FastAPI copies the router's routes and builds their
    pydantic response fields); the app holds nothing of a spec but dependency_overrides.
    """
    kept = _APPS.get(id(router))
    if kept is None or kept[0] is not router:
        kept = _APPS[id(router)] = (router, build_app(router, None))
    return kept[1]


@pytest_asyncio.fixture
async def client(kata, engine):
    app = app_for(kata.router)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def session_on_the_spec_database():
        async with sessions() as session:
            yield session

    app.dependency_overrides[get_async_db] = session_on_the_spec_database  # this spec's database
    transport = httpx.ASGITransport(app=app)  # app exceptions reach the spec as they are
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        app.dependency_overrides.clear()


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
            said += MSG("did-warn", warning=self.never_awaited[0])
        return said

    def _what_happened(self) -> str:
        error = self.error
        if error is None:
            body = str(self.body)
            body = body[:160] + ("..." if len(body) > 160 else "")
            return MSG("did-answer", request=self.request, status=self.status, body=body)
        if self.failed_on_a_lazy_load:
            return MSG("did-lazy-load", request=self.request)
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        if isinstance(error, NotImplementedError):
            return MSG("did-todo", request=self.request, text=first_line)
        if isinstance(error, NoResultFound):
            return MSG("did-no-result", request=self.request)
        if isinstance(error, ResponseValidationError) and error.errors():
            first = error.errors()[0]
            return MSG(
                "did-not-validate",
                request=self.request,
                input=repr(str(first.get("input"))[:60]),
                problem=first.get("msg"),
            )
        return MSG("did-crash", request=self.request, error=type(error).__name__, text=first_line)


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
            pytest.fail(MSG("hung", request=request, seconds=ANSWER_WITHIN), pytrace=False)
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
    # Only the warning's first line: with tracebacks kept, Python appends where the coroutine was
    # created, which belongs behind -v, not in the two lines of the message.
    answer.never_awaited = [
        str(w.message).splitlines()[0] for w in caught if "never awaited" in str(w.message)
    ]
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
async def test_the_list_returns_every_post_with_id_title_and_content(client, engine):
    """GET /async/posts/ answers 200 with every post, as PostListResponse (id, title, content),
    as the database holds them at the time of the request."""
    first = await send(client, "GET", "/async/posts/")
    # Then one post changes, through a connection of the spec's own: the list must show the
    # database as it is now, not as it was at the first request.
    post_id, update = random.choice(list(seed.POSTS)), new_update()
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE posts SET title = :title, content = :content WHERE id = :id"),
            {"id": post_id, **update},
        )
    changed = {**seed.POSTS, post_id: (update["title"], update["content"])}
    second = await send(client, "GET", "/async/posts/")

    for answer, expected in ((first, seed.POSTS), (second, changed)):
        assert answer.status == 200 and isinstance(answer.body, list), MSG(
            "list-failed", said=answer.describe()
        )
        got = {fields(p, "id")[0]: fields(p, "title", "content") for p in answer.body}
        assert got == expected, MSG("list-wrong", got=got, expected=expected)
        keys = {key for post in answer.body if isinstance(post, dict) for key in post}
        assert keys == {"id", "title", "content"}, MSG("list-keys", keys=sorted(keys))


# --- RT2: GET lazy fails, GET selectin loads comments and tags ----------------------------------


@pytest.mark.rule("RT2")
async def test_the_lazy_detail_fails_because_comments_and_tags_were_never_loaded(client):
    """GET .../lazy fails with MissingGreenlet: the response reads relationships nobody loaded."""
    post_id = random.choice([1, 2, 3, 4])
    answer = await send(client, "GET", f"/async/posts/{post_id}/lazy")

    assert answer.failed_on_a_lazy_load, MSG("lazy-get-not-lazy", said=answer.describe())


@pytest.mark.rule("RT2")
async def test_the_selectin_detail_returns_the_comments_and_tags_of_each_post(client):
    """GET .../selectin answers PostDetailResponse with the post's comments and tags, for every post."""
    for post_id, (title, content) in random.sample(list(seed.POSTS.items()), len(seed.POSTS)):
        answer = await send(client, "GET", f"/async/posts/{post_id}/selectin")
        assert answer.status == 200, MSG("selectin-failed", said=answer.describe())
        got = fields(answer.body, "id", "title", "content")
        assert got == (post_id, title, content), MSG(
            "selectin-wrong-post", post_id=post_id, got=got, expected=(post_id, title, content)
        )
        expected = seeded_comments_and_tags(post_id)
        assert comments_and_tags(answer.body) == expected, MSG(
            "selectin-wrong-children", post_id=post_id, got=comments_and_tags(answer.body),
            expected=expected,
        )


async def statements_per_post(client, engine, method: str, route: str, body=None) -> tuple[dict, Answer | None]:
    """SQL statements one request sends, per post, for posts with 1, 2 and 3 tags (in a random
    order); the first failed answer, if any."""
    statements = StatementCounter(engine)
    counts = {}
    for post_id in random.sample([3, 1, 4], 3):  # 1, 2 and 3 tags; 1, 3 and 2 comments
        before = statements.count
        kwargs = {"json": body or new_update()} if method == "PUT" else {}
        answer = await send(client, method, f"/async/posts/{post_id}/{route}", **kwargs)
        if answer.status != 200:
            return counts, answer
        counts[post_id] = statements.count - before
    return counts, None


@pytest.mark.rule("RT2")
async def test_the_selectin_detail_takes_the_same_number_of_statements_however_many_tags(
    client, engine
):
    """A detail GET costs a fixed number of statements, not one more per comment or tag (no N+1)."""
    counts, failed = await statements_per_post(client, engine, "GET", "selectin")
    assert failed is None, MSG("selectin-failed", said=failed.describe() if failed else "")

    tags = {post_id: len(seed.tags_of(post_id)) for post_id in counts}
    assert len(set(counts.values())) == 1, MSG("n-plus-one", method="GET", counts=counts, tags=tags)


@pytest.mark.rule("RT2")
@pytest.mark.timeout(20)
async def test_a_real_client_gets_500_from_lazy_and_the_comments_from_selectin(kata, seeded_db):
    """Over real HTTP (uvicorn), GET .../lazy is a 500 and GET .../selectin a 200 with comments."""
    post_id = random.choice([1, 2, 4])
    # A new connection per request (no keep-alive): after a 500, uvicorn may close a kept-alive
    # one under us.
    # verify=False: plain HTTP needs no certificates, and loading them costs 50-90 ms.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    async with real_server(kata.router, seeded_db.async_url) as base_url, httpx.AsyncClient(
        base_url=base_url, timeout=ANSWER_WITHIN, limits=no_reuse, verify=False
    ) as http:
        lazy = await get_over_http(http, f"/async/posts/{post_id}/lazy")
        selectin = await get_over_http(http, f"/async/posts/{post_id}/selectin")

    assert lazy.status_code == 500, MSG(
        "http-lazy", post_id=post_id, status=lazy.status_code, text=lazy.text[:160]
    )
    assert selectin.status_code == 200, MSG(
        "http-selectin", post_id=post_id, status=selectin.status_code, text=selectin.text[:160]
    )
    expected = seeded_comments_and_tags(post_id)
    assert comments_and_tags(selectin.json()) == expected, MSG(
        "http-selectin-children", post_id=post_id, got=comments_and_tags(selectin.json()),
        expected=expected,
    )


async def get_over_http(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """A GET from a real HTTP client; a hung route fails the spec with its own message."""
    try:
        return await http.get(path)
    except httpx.TimeoutException:
        pytest.fail(MSG("http-hung", path=path, seconds=ANSWER_WITHIN), pytrace=False)


@asynccontextmanager
async def real_server(router, database_url):
    """uvicorn serving the learner's router on 127.0.0.1 (kata_tools.serving: a thread of its own).

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
    try:
        async with serving(app) as base_url:
            yield base_url
    except ServerDidNotStart:
        pytest.fail(MSG("uvicorn-no-start"), pytrace=False)


# --- RT3: PUT selectin updates, commits, answers the detail -------------------------------------


@pytest.mark.rule("RT3")
async def test_put_selectin_answers_with_the_update_and_commits_it(client, engine):
    """PUT .../selectin answers 200 with the new title and content, and they are in the database."""
    post_id, update = random.choice(list(seed.POSTS)), new_update()
    answer = await send(client, "PUT", f"/async/posts/{post_id}/selectin", json=update)
    stored = await read_post(engine, post_id)

    assert answer.status == 200, MSG("put-failed", said=answer.describe())
    got = dict(zip(("id", "title", "content"), fields(answer.body, "id", "title", "content")))
    assert got == {"id": post_id, **update}, MSG(
        "put-wrong-answer", post_id=post_id, update=update, got=got
    )
    assert stored == (update["title"], update["content"]), MSG(
        "put-not-committed", said=answer.describe(), stored=stored
    )


# --- LZ3: after commit, answer from an eager-loaded query -----------------------------------------


@pytest.mark.rule("LZ3")
async def test_put_selectin_answers_with_comments_and_tags_loaded_after_the_commit(client):
    """PUT .../selectin builds its response without a lazy load: comments and tags are loaded."""
    post_id = random.choice([1, 2, 4])
    answer = await send(client, "PUT", f"/async/posts/{post_id}/selectin", json=new_update())

    assert not answer.failed_on_a_lazy_load, MSG("put-lazy-load", said=answer.describe())
    assert answer.status == 200, MSG("put-failed-lz3", said=answer.describe())
    expected = seeded_comments_and_tags(post_id)
    assert comments_and_tags(answer.body) == expected, MSG(
        "put-wrong-children", post_id=post_id, got=comments_and_tags(answer.body),
        expected=expected,
    )


@pytest.mark.rule("LZ3")
async def test_put_selectin_takes_the_same_number_of_statements_however_many_tags(
    client, engine
):
    """An update answers from an eager-loaded query: a fixed number of statements, not one more
    per comment or tag (no N+1 after the commit either)."""
    counts, failed = await statements_per_post(client, engine, "PUT", "selectin")
    assert failed is None, MSG("put-failed-lz3", said=failed.describe() if failed else "")

    tags = {post_id: len(seed.tags_of(post_id)) for post_id in counts}
    assert len(set(counts.values())) == 1, MSG("n-plus-one", method="PUT", counts=counts, tags=tags)


@pytest.mark.rule("LZ3")
async def test_the_lazy_put_commits_then_fails_so_the_client_gets_500_for_a_saved_change(
    client, engine
):
    """PUT .../lazy commits, then fails building its response: a 500, yet the update is saved."""
    post_id, update = random.choice([1, 2, 4]), new_update()
    answer = await send(client, "PUT", f"/async/posts/{post_id}/lazy", json=update)
    stored = await read_post(engine, post_id)

    assert answer.failed_on_a_lazy_load, MSG("lazy-put-not-lazy", said=answer.describe())
    assert stored == (update["title"], update["content"]), MSG(
        "lazy-put-not-saved", post_id=post_id, stored=stored
    )


# --- RT4: bad input is 404 or 422, never 500 --------------------------------------------------------


@pytest.mark.rule("RT4")
async def test_a_missing_post_is_404_on_every_detail_and_update_route(client):
    """A post id that does not exist answers 404 on all four routes, the lazy ones included."""
    missing = missing_id()
    answers = [
        await send(client, "GET", f"/async/posts/{missing}/lazy"),
        await send(client, "GET", f"/async/posts/{missing}/selectin"),
        await send(client, "PUT", f"/async/posts/{missing}/lazy", json=new_update()),
        await send(client, "PUT", f"/async/posts/{missing}/selectin", json=new_update()),
    ]
    wrong = [a.describe() for a in answers if a.status != 404]
    assert not wrong, MSG("missing-not-404", missing=missing, wrong="; ".join(wrong))


@pytest.mark.rule("RT4")
async def test_an_invalid_body_or_id_is_422_and_changes_nothing(client, engine):
    """An invalid PUT body or a non-numeric id answers 422, and the post stays as it was."""
    post_id = random.choice(list(seed.POSTS))
    url = f"/async/posts/{post_id}/selectin"
    answers = [
        await send(client, "PUT", url, json={"title": "", "content": "An empty title."}),
        await send(client, "PUT", url, json={"title": "No content"}),
        await send(client, "PUT", url, json={"title": "x" * 201, "content": "Title too long."}),
        await send(client, "PUT", url, content=b"not json", headers={"content-type": "application/json"}),
        await send(client, "GET", "/async/posts/one/selectin"),
    ]
    wrong = [a.describe() for a in answers if a.status != 422]
    assert not wrong, MSG("invalid-not-422", wrong="; ".join(wrong))
    stored = await read_post(engine, post_id)
    assert stored == seed.POSTS[post_id], MSG(
        "invalid-changed", post_id=post_id, stored=stored, expected=seed.POSTS[post_id]
    )
