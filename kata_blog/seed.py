"""Seed data: the same small blog in every test database, so specs can name what they expect.

`install(connection)` creates the tables and rows; kata_tools.postgres runs it once per test
session into a template database that every database spec then gets a fresh copy of.
"""

from __future__ import annotations

from sqlalchemy import insert

from kata_blog.models import Base, Comment, Post, PostTag, Tag

TAGS = {1: "python", 2: "async", 3: "database", 4: "fastapi"}

POSTS = {
    1: ("Event loops", "One thread, many waits."),
    2: ("Thread pools", "Forty threads by default."),
    3: ("Connection pools", "Five plus ten."),
    4: ("Eager loading", "selectinload before you read."),
    5: ("No comments yet", "A post with no comments and no tags."),
}

COMMENTS = {  # comment id -> (post id, content)
    1: (1, "Finally I get await."),
    2: (1, "What about blocking calls?"),
    3: (1, "time.sleep is the trap."),
    4: (2, "Is 40 a hard limit?"),
    5: (3, "pool_size is not opened at start!"),
    6: (4, "MissingGreenlet explained."),
    7: (4, "selectinload saved my day."),
}

POST_TAGS = {1: [1, 2], 2: [1, 4], 3: [3], 4: [3, 4, 2]}  # post id -> tag ids


def comments_of(post_id: int) -> list[str]:
    return [content for _, (pid, content) in sorted(COMMENTS.items()) if pid == post_id]


def tags_of(post_id: int) -> list[str]:
    return [TAGS[tag_id] for tag_id in sorted(POST_TAGS.get(post_id, []))]


def install(connection) -> None:
    """Create the blog tables and rows through a SQLAlchemy (sync) Connection; commit is the caller's."""
    Base.metadata.create_all(connection)
    connection.execute(insert(Tag), [{"id": i, "name": n} for i, n in TAGS.items()])
    connection.execute(insert(Post), [{"id": i, "title": t, "content": c} for i, (t, c) in POSTS.items()])
    connection.execute(
        insert(Comment),
        [{"id": i, "post_id": p, "content": c} for i, (p, c) in COMMENTS.items()],
    )
    connection.execute(
        insert(PostTag),
        [{"post_id": p, "tag_id": t} for p, tags in POST_TAGS.items() for t in tags],
    )
    # Explicit ids above: move the sequences past them, so new rows get fresh ids.
    for table in ("posts", "comments", "tags"):
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )
