"""Specs of kata 06: eager loading (rules LZ1, LZ2). Do not edit: edit eager_loading.py.

Every spec gets its own copy of the seeded blog database, an async engine made for it alone and
AsyncSessions on that engine (expire_on_commit=False, as kata 05 taught). The engine counts the
SQL statements it sends, so the specs see what each function loaded, and when: a query per row
(N+1) shows up as a count that grows with the rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Comment, Post, PostTag
from kata_blog.schemas import PostDetailResponse
from kata_blog.seed import POSTS, comments_of, tags_of
from kata_tools.attempts import attempt

pytestmark = pytest.mark.asyncio


@pytest.fixture
def kata(kata_module):
    return kata_module("eager_loading.py")


# --- running learner code ------------------------------------------------------------------------




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


async def call(blog: Blog, function, *args, rule: str):
    """Await a learner function; return its value and the statements it sent."""
    mark = blog.statements.mark()
    outcome = await attempt(lambda: function(*args))
    outcome.fail_if_crashed(rule)
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
    db = blog.session()
    post, sent = await call(blog, kata.get_post_lazy, db, 1, rule="LZ1")

    assert isinstance(post, Post) and post.id == 1, (
        f"get_post_lazy(db, 1) returned {post!r}; return the Post with id 1 (LZ1)."
    )
    assert len(sent) == 1, (
        f"get_post_lazy sent {len(sent)} statements ({tables(sent)}); the notes' lazy version "
        f"loads the post alone, with one SELECT: await db.get(Post, post_id) (LZ1)."
    )
    title, _ = await read(blog, lambda: post.title)
    assert title.value == POSTS[1][0], (
        f"post.title read {title.value!r} ({title.error or 'no error'}); the columns of a loaded "
        f"post read without a query (LZ1)."
    )
    comments, sent = await read(blog, lambda: post.comments)
    assert comments.missing_greenlet, (
        f"Reading post.comments of the lazy post gave {comments.error or 'no error'} after "
        f"{len(sent)} statement(s); in async code it must raise sqlalchemy.exc.MissingGreenlet: "
        f"the lazy load would be a query, and a plain attribute read cannot await one. Keep "
        f"get_post_lazy the notes' version, db.get with no loader options (LZ1)."
    )


@pytest.mark.rule("LZ1")
async def test_load_comments_makes_the_comments_of_a_post_in_hand_readable(kata, blog):
    """load_comments loads post.comments with an awaited query; reading it then sends nothing."""
    db = blog.session()
    for post_id in (1, 5):  # three comments; none at all
        post = await db.get(Post, post_id)
        outcome = await attempt(lambda: kata.load_comments(db, post))
        assert not outcome.missing_greenlet, (
            f"load_comments raised MissingGreenlet at {outcome.where or 'eager_loading.py'}: "
            f"it read post.comments before they were loaded, and in async code that lazy load "
            f"cannot run. Load them first with an awaited call that names the relationship (LZ1)."
        )
        outcome.fail_if_crashed("LZ1")
        returned = outcome.value
        assert returned is not None and texts(returned) == comments_of(post_id), (
            f"load_comments returned {returned!r} for post {post_id}; expected its comments "
            f"{comments_of(post_id)}, in id order (LZ1)."
        )
        after, sent = await read(blog, lambda: texts(post.comments))
        assert not after.error and not sent, (
            f"After load_comments, reading post.comments gave {after.error or 'no error'} and "
            f"sent {len(sent)} statement(s): the comments must be loaded onto the post itself, "
            f"not only returned. await db.refresh(post, attribute_names=[...]) does that (LZ1)."
        )


# --- LZ2: load it in the query -------------------------------------------------------------------


@pytest.mark.rule("LZ2")
async def test_get_post_with_comments_loads_them_with_the_query(kata, blog):
    """The comments come with the query: reading them afterwards sends no statement."""
    db = blog.session()
    post, sent = await call(blog, kata.get_post_with_comments, db, 1, rule="LZ2")
    assert isinstance(post, Post) and post.id == 1, (
        f"get_post_with_comments(db, 1) returned {post!r}; return the Post with id 1 (LZ2)."
    )

    comments, later = await read(blog, lambda: texts(post.comments))
    assert not comments.missing_greenlet, (
        "Reading post.comments after get_post_with_comments raised MissingGreenlet: the query "
        "did not load them (LZ1). Add a loader option to the select: "
        ".options(selectinload(Post.comments)) (LZ2)."
    )
    assert comments.value == comments_of(1) and not later, (
        f"post.comments read {comments.value!r} with {len(later)} more statement(s); expected "
        f"{comments_of(1)} and none (LZ2)."
    )
    assert len(sent) <= 2, (
        f"get_post_with_comments sent {len(sent)} statements ({tables(sent)}); a post and its "
        f"comments take at most 2: one for the post, one for all its comments (LZ2)."
    )


async def detail_of(blog: Blog, kata, post_id: int):
    """get_post_detail in a fresh session: the post, what it sent, and a full read of it."""
    db = blog.session()
    post, sent = await call(blog, kata.get_post_detail, db, post_id, rule="LZ2")
    assert isinstance(post, Post) and post.id == post_id, (
        f"get_post_detail(db, {post_id}) returned {post!r}; return the Post with that id (LZ2)."
    )
    for step, reading, fix in (
        ("post.comments", lambda: post.comments, "selectinload(Post.comments)"),
        ("post.post_tags", lambda: post.post_tags, "selectinload(Post.post_tags)"),
        (
            "post_tag.tag of each post_tags row",
            lambda: [post_tag.tag.name for post_tag in post.post_tags],
            "a chained option on the post_tags one: selectinload(Post.post_tags)"
            ".selectinload(PostTag.tag)",
        ),
    ):
        outcome, _ = await read(blog, reading)
        assert not outcome.missing_greenlet, (
            f"After get_post_detail, reading {step} raised MissingGreenlet: the query did not "
            f"load it. post.tags reads post.post_tags and then each PostTag.tag: load every step "
            f"with the query. Add {fix} (LZ2)."
        )
        outcome.fail_if_crashed("LZ2")
    response, later = await read(blog, lambda: PostDetailResponse.model_validate(post))
    response.fail_if_crashed("LZ2")
    assert not later, (
        f"Building PostDetailResponse from the post sent {len(later)} more statement(s) "
        f"({tables(later)}); everything it reads must come with the query (LZ2)."
    )
    return response.value, sent


@pytest.mark.rule("LZ2")
async def test_get_post_detail_loads_comments_and_tags_with_the_query(kata, blog):
    """Comments, post_tags and each PostTag.tag come with the query: the response needs no SQL."""
    detail, sent = await detail_of(blog, kata, 4)

    got = (texts(detail.comments), names(detail.tags))
    assert got == (comments_of(4), tags_of(4)), (
        f"The detail of post 4 has comments and tags {got}; expected "
        f"{(comments_of(4), tags_of(4))} (LZ2)."
    )
    assert len(sent) <= 4, (
        f"get_post_detail sent {len(sent)} statements for one post ({tables(sent)}); loaded with "
        f"the query it takes at most 4 (the post, its comments, its post_tags, their tags) (LZ2)."
    )


@pytest.mark.rule("LZ2")
async def test_get_post_detail_takes_as_many_statements_for_ten_comments_as_for_two(kata, blog):
    """The statement count of the detail does not grow with the post's comments and tags."""
    async with blog.session() as db:  # a post with 10 comments and all 4 tags
        big = Post(
            title="Busy post",
            content="Many comments, every tag.",
            comments=[Comment(content=f"Comment {i}") for i in range(10)],
            post_tags=[PostTag(tag_id=tag_id) for tag_id in (1, 2, 3, 4)],
        )
        db.add(big)
        await db.commit()

    _, small_sent = await detail_of(blog, kata, 4)  # 2 comments, 3 tags
    detail, big_sent = await detail_of(blog, kata, big.id)

    assert len(detail.comments) == 10 and len(detail.tags) == 4, (
        f"The detail of a post with 10 comments and 4 tags has {len(detail.comments)} comments "
        f"and {len(detail.tags)} tags (LZ2)."
    )
    assert len(big_sent) == len(small_sent), (
        f"get_post_detail sent {len(small_sent)} statements for a post with 2 comments and 3 "
        f"tags, but {len(big_sent)} for one with 10 comments and 4 tags ({tables(big_sent)}): "
        f"something is loaded one row at a time. Load each relationship for all rows at once "
        f"with a loader option (LZ2)."
    )


@pytest.mark.rule("LZ2")
async def test_listing_posts_with_comments_takes_as_many_statements_for_25_posts_as_for_5(
    kata, blog
):
    """No N+1: listing the posts with their comments takes as many statements for 25 as for 5."""
    async def listing():
        posts, sent = await call(blog, kata.list_posts_with_comments, blog.session(), rule="LZ2")
        posts = list(posts or [])
        comments, later = await read(blog, lambda: [texts(post.comments) for post in posts])
        assert not comments.missing_greenlet, (
            "Reading post.comments of the listed posts raised MissingGreenlet: the query did not "
            "load them (LZ1). Add .options(selectinload(Post.comments)) to the select (LZ2)."
        )
        comments.fail_if_crashed("LZ2")
        assert not later, (
            f"Reading the comments of the listed posts sent {len(later)} statement(s); they must "
            f"come with the query (LZ2)."
        )
        return posts, comments.value, sent

    posts, comments, few = await listing()
    assert [p.id for p in posts] == list(POSTS) and comments == [comments_of(i) for i in POSTS], (
        f"list_posts_with_comments returned posts {[p.id for p in posts]} with comments "
        f"{comments}; expected every post in id order, each with its comments (LZ2)."
    )

    async with blog.session() as db:  # 20 more posts, with 2 comments each
        db.add_all(
            Post(
                title=f"Extra post {i}",
                content="Added by the spec.",
                comments=[Comment(content=f"First on {i}"), Comment(content=f"Second on {i}")],
            )
            for i in range(20)
        )
        await db.commit()

    posts, comments, many = await listing()
    assert len(posts) == 25 and sum(map(len, comments)) == 7 + 40, (
        f"After adding 20 posts with 2 comments each, list_posts_with_comments returned "
        f"{len(posts)} posts with {sum(map(len, comments))} comments; expected 25 and 47 (LZ2)."
    )
    assert len(many) == len(few), (
        f"list_posts_with_comments sent {len(few)} statements for 5 posts ({tables(few)}) and "
        f"{len(many)} for 25 ({tables(many)}): a query per post is the N+1 problem. Load the "
        f"comments of all posts with the one select: .options(selectinload(Post.comments)) (LZ2)."
    )
