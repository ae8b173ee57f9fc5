"""Specs of kata 06: eager loading (rules LZ1, LZ2). Do not edit: edit eager_loading.py.

Every spec gets its own copy of the seeded blog database, an async engine made for it alone and
AsyncSessions on that engine (expire_on_commit=False, as kata 05 taught). The engine counts the
SQL statements it sends, so the specs see what each function loaded, and when: a query per row
(N+1) shows up as a count that grows with the rows. The post ids vary from run to run.
The failure messages live in messages.toml beside this file, in English and Korean.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from sqlalchemy import event, text, update
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Comment, Post, PostTag
from kata_blog.schemas import PostDetailResponse
from kata_blog.seed import POSTS, comments_of, tags_of
from kata_tools.attempts import Attempt, attempt
from kata_tools.i18n import catalog

pytestmark = pytest.mark.asyncio

MSG = catalog(__file__)

WITH_COMMENTS = [post_id for post_id in POSTS if comments_of(post_id)]
WITH_TAGS = [post_id for post_id in POSTS if tags_of(post_id) and comments_of(post_id)]


@pytest.fixture
def kata(kata_module):
    return kata_module("eager_loading.py")


def fail(key: str, **fields) -> None:
    pytest.fail(MSG(key, **fields), pytrace=False)


# --- running learner code ------------------------------------------------------------------------


def attribute_of(error: BaseException) -> str | None:
    """`Post.comments`: the mapped attribute whose read raised `error`, from its traceback."""
    tb, found = error.__traceback__, None
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "__get__" and hasattr(owner, "key") and hasattr(owner, "class_"):
            found = f"{owner.class_.__name__}.{owner.key}"
        tb = tb.tb_next
    return found


async def attempt_naming(run) -> tuple[Attempt, str | None]:
    """attempt(run), and the attribute a MissingGreenlet came from (None if none)."""
    seen: dict = {}

    async def watched():
        try:
            value = run()
            return await value if hasattr(value, "__await__") else value
        except MissingGreenlet as e:
            seen["attribute"] = attribute_of(e)
            raise

    outcome = await attempt(watched)
    return outcome, seen.get("attribute")


def crashed(outcome: Attempt, attribute: str | None = None) -> None:
    """Fail with the learner's own error (or forgotten await), in the run's language."""
    if outcome.unawaited:
        fail("not-awaited", call=outcome.unawaited[0])
    if outcome.missing_greenlet:
        fail("missing-greenlet-in-code", attribute=attribute or "?", where=outcome.where or FILE)
    where = outcome.where or FILE
    if "unique() method must be invoked" in outcome.message:
        fail("lz2-joinedload-unique", where=where)
    if "does not apply to any of the root entities" in outcome.message:
        fail("lz2-unchained-option", where=where, message=outcome.message.split(" Please")[0][:200])
    if outcome.error:
        fail("crashed", error=outcome.error, where=where, message=outcome.message[:300])


FILE = "eager_loading.py"


# --- the database, the sessions, the statement count ---------------------------------------------


class Statements:
    """Every SQL statement the engine sends, in order (the engine's before_cursor_execute event)."""

    def __init__(self, engine):
        self.sql: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._sent)

    def _sent(self, conn, cursor, statement, parameters, context, executemany):
        self.sql.append(" ".join(statement.split()))

    def mark(self) -> int:
        return len(self.sql)

    def since(self, mark: int) -> list[str]:
        return self.sql[mark:]


def tables(statements: list[str]) -> str:
    """A short account of statements: the tables they read, with counts ("posts, comments x5")."""
    counts: dict[str, int] = {}
    for statement in statements:
        found = re.search(r"\bFROM (\w+)", statement) or re.search(r"^(\w+)", statement)
        counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.items()) or "none"


@dataclass
class Blog:
    """A spec's database: new sessions on demand, and the statements they sent."""

    statements: Statements
    factory: async_sessionmaker
    opened: list = field(default_factory=list)

    def session(self) -> AsyncSession:
        session = self.factory()
        self.opened.append(session)
        return session


@pytest_asyncio.fixture
async def blog(seeded_db):
    engine = create_async_engine(seeded_db.async_url)
    try:
        async with engine.connect() as conn:  # the first connect's own set-up is not counted
            await conn.execute(text("SELECT 1"))
        blog = Blog(Statements(engine), async_sessionmaker(engine, expire_on_commit=False))
        yield blog
        for session in blog.opened:
            await session.close()
    finally:
        await engine.dispose()


async def call(blog: Blog, function, *args):
    """Await a learner function; return its value and the statements it sent."""
    mark = blog.statements.mark()
    outcome, attribute = await attempt_naming(lambda: function(*args))
    crashed(outcome, attribute)
    return outcome.value, blog.statements.since(mark)


async def read(blog: Blog, reading):
    """Run `reading()` (plain attribute reads); return the outcome and the statements it sent."""
    mark = blog.statements.mark()
    outcome = await attempt(reading)
    return outcome, blog.statements.since(mark)


def texts(items) -> list[str]:
    return [item.content for item in items]


def names(tags) -> list[str]:
    return [tag.name for tag in tags]


# --- LZ1: an unloaded relationship raises MissingGreenlet in async code --------------------------


@pytest.mark.rule("LZ1")
async def test_reading_a_relationship_the_query_did_not_load_raises_missing_greenlet(kata, blog):
    """The notes' lazy version: columns read fine, post.comments raises MissingGreenlet."""
    post_id = random.choice(WITH_COMMENTS)
    db = blog.session()
    post, sent = await call(blog, kata.get_post_lazy, db, post_id)

    if not (isinstance(post, Post) and post.id == post_id):
        fail("lz1-lazy-wrong-post", post_id=post_id, got=repr(post))
    if len(sent) != 1:
        fail("lz1-lazy-statements", sent=len(sent), tables=tables(sent))
    title, _ = await read(blog, lambda: post.title)
    if title.value != POSTS[post_id][0]:
        fail("lz1-title", got=repr(title.value), error=title.error or "-")
    comments, sent = await read(blog, lambda: post.comments)
    if not comments.missing_greenlet:
        fail("lz1-comments-loaded", error=comments.error or "-", sent=len(sent))


@pytest.mark.rule("LZ1")
async def test_load_comments_makes_the_comments_of_a_post_in_hand_readable(kata, blog):
    """load_comments loads post.comments with an awaited query; reading it then sends nothing."""
    db = blog.session()
    for post_id in (random.choice(WITH_COMMENTS), 5):  # some comments; none at all
        post = await db.get(Post, post_id)
        outcome, attribute = await attempt_naming(lambda: kata.load_comments(db, post))
        if outcome.missing_greenlet:
            fail("lz1-load-comments-lazy", attribute=attribute or "Post.comments",
                 where=outcome.where or FILE)
        crashed(outcome)
        returned = outcome.value
        if returned is None or texts(returned) != comments_of(post_id):
            fail("lz1-load-comments-value", got=repr(returned), post_id=post_id,
                 expected=comments_of(post_id))
        after, sent = await read(blog, lambda: texts(post.comments))
        if after.error or sent:
            fail("lz1-load-comments-not-on-post", error=after.error or "-", sent=len(sent))


# --- LZ2: load it in the query -------------------------------------------------------------------


@pytest.mark.rule("LZ2")
async def test_get_post_with_comments_loads_them_with_the_query(kata, blog):
    """The comments come with the query: reading them afterwards sends no statement."""
    post_id = random.choice(WITH_COMMENTS)
    db = blog.session()
    post, sent = await call(blog, kata.get_post_with_comments, db, post_id)
    if not (isinstance(post, Post) and post.id == post_id):
        fail("lz2-wrong-post", function="get_post_with_comments", post_id=post_id, got=repr(post))

    comments, later = await read(blog, lambda: texts(post.comments))
    if comments.missing_greenlet:
        fail("lz2-not-loaded", attribute="post.comments", fix="selectinload(Post.comments)")
    crashed(comments)
    if comments.value != comments_of(post_id) or later:
        fail("lz2-comments", got=repr(comments.value), later=len(later),
             expected=comments_of(post_id))
    if len(sent) > 2:
        fail("lz2-with-comments-statements", sent=len(sent), tables=tables(sent))


async def detail_of(blog: Blog, kata, post_id: int):
    """get_post_detail in a fresh session: the post, what it sent, and a full read of it."""
    db = blog.session()
    post, sent = await call(blog, kata.get_post_detail, db, post_id)
    if not (isinstance(post, Post) and post.id == post_id):
        fail("lz2-wrong-post", function="get_post_detail", post_id=post_id, got=repr(post))
    for step, reading, fix in (
        ("post.comments", lambda: post.comments, "selectinload(Post.comments)"),
        ("post.post_tags", lambda: post.post_tags, "selectinload(Post.post_tags)"),
        (
            "post_tag.tag",
            lambda: [post_tag.tag.name for post_tag in post.post_tags],
            "selectinload(Post.post_tags).selectinload(PostTag.tag)",
        ),
    ):
        outcome, _ = await read(blog, reading)
        if outcome.missing_greenlet:
            fail("lz2-detail-not-loaded", attribute=step, fix=fix)
        crashed(outcome)
    response, later = await read(blog, lambda: PostDetailResponse.model_validate(post))
    crashed(response)
    if later:
        fail("lz2-response-queries", later=len(later), tables=tables(later))
    return response.value, sent


@pytest.mark.rule("LZ2")
async def test_get_post_detail_loads_comments_and_tags_with_the_query(kata, blog):
    """Comments, post_tags and each PostTag.tag come with the query: the response needs no SQL."""
    post_id = random.choice(WITH_TAGS)
    detail, sent = await detail_of(blog, kata, post_id)

    got = (texts(detail.comments), names(detail.tags))
    expected = (comments_of(post_id), tags_of(post_id))
    if got != expected:
        fail("lz2-detail-content", post_id=post_id, got=got, expected=expected)
    if len(sent) > 4:
        fail("lz2-detail-statements", sent=len(sent), tables=tables(sent))


@pytest.mark.rule("LZ2")
async def test_get_post_detail_takes_as_many_statements_for_ten_comments_as_for_two(kata, blog):
    """The statement count of the detail does not grow with the post's comments and tags."""
    many = random.randint(8, 14)
    async with blog.session() as db:  # a post with many comments and all 4 tags
        big = Post(
            title="Busy post",
            content="Many comments, every tag.",
            comments=[Comment(content=f"Comment {i}") for i in range(many)],
            post_tags=[PostTag(tag_id=tag_id) for tag_id in (1, 2, 3, 4)],
        )
        db.add(big)
        await db.commit()

    small_id = 4  # 2 comments, 3 tags
    _, small_sent = await detail_of(blog, kata, small_id)
    detail, big_sent = await detail_of(blog, kata, big.id)

    if (len(detail.comments), len(detail.tags)) != (many, 4):
        fail("lz2-big-detail-content", many=many, comments=len(detail.comments),
             tags=len(detail.tags))
    if len(big_sent) != len(small_sent):
        fail("lz2-detail-grows", small=len(small_sent), big=len(big_sent), many=many,
             tables=tables(big_sent))


@pytest.mark.rule("LZ2")
async def test_listing_posts_with_comments_takes_as_many_statements_for_25_posts_as_for_5(
    kata, blog
):
    """No N+1: listing the posts with their comments takes as many statements for 25 as for 5."""
    async def listing():
        posts, sent = await call(blog, kata.list_posts_with_comments, blog.session())
        posts = list(posts or [])
        comments, later = await read(blog, lambda: [texts(post.comments) for post in posts])
        if comments.missing_greenlet:
            fail("lz2-not-loaded", attribute="post.comments (listed posts)",
                 fix="selectinload(Post.comments)")
        crashed(comments)
        if later:
            fail("lz2-list-later", later=len(later))
        return posts, comments.value, sent

    # A row updated moves to the end of the table on disk: only ORDER BY gives id order then.
    async with blog.session() as db:
        await db.execute(update(Post).where(Post.id == 2).values(title="Thread pools, edited"))
        await db.commit()

    posts, comments, few = await listing()
    ids, expected = [p.id for p in posts], list(POSTS)
    if ids != expected or comments != [comments_of(i) for i in POSTS]:
        fail("lz2-list-content", ids=ids, expected=expected)

    extra = random.randint(15, 30)
    async with blog.session() as db:  # more posts, with 2 comments each
        db.add_all(
            Post(
                title=f"Extra post {i}",
                content="Added by the spec.",
                comments=[Comment(content=f"First on {i}"), Comment(content=f"Second on {i}")],
            )
            for i in range(extra)
        )
        await db.commit()

    posts, comments, many = await listing()
    total, n_comments = len(POSTS) + extra, len(seed_comments()) + 2 * extra
    if len(posts) != total or sum(map(len, comments)) != n_comments:
        fail("lz2-list-count", extra=extra, posts=len(posts), comments=sum(map(len, comments)),
             total=total, n_comments=n_comments)
    if len(many) != len(few):
        fail("lz2-list-grows", few=len(few), tables_few=tables(few), total=total, many=len(many),
             tables_many=tables(many))


def seed_comments() -> list[str]:
    return [c for post_id in POSTS for c in comments_of(post_id)]
