"""Kata 06 - eager loading. Read README.md in this folder first.

Async query functions over the blog models. In async code a relationship must be loaded before it
is read: `pytest katas/06_eager_loading` tells you, rule by rule, what is still wrong. Only this
file is yours to edit: the specs are in test_eager_loading.py. Every function gets an open
AsyncSession `db`; post ids name posts that exist.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from kata_blog.models import Comment, Post, PostTag


async def get_post_lazy(db: AsyncSession, post_id: int) -> Post:
    """The notes' /lazy route: the post by its primary key, its relationships left unloaded."""
    # TODO: fetch the post the way the notes' lazy route does. The specs then show what reading
    #       its comments does in async code (rule LZ1).
    raise NotImplementedError("get_post_lazy")


async def load_comments(db: AsyncSession, post: Post) -> list[Comment]:
    """Load the comments of a post you already hold, so that post.comments reads; return them."""
    # TODO: in sync code, reading the attribute runs the query. What happens here (LZ1)?
    return post.comments


async def get_post_with_comments(db: AsyncSession, post_id: int) -> Post:
    """The post with its comments loaded by the query itself."""
    # TODO: one select of the post that also loads its comments (LZ2).
    raise NotImplementedError("get_post_with_comments")


async def get_post_detail(db: AsyncSession, post_id: int) -> Post:
    """The post with its comments and its tags: everything PostDetailResponse reads."""
    # TODO: load comments and tags with the query. post.tags reads post.post_tags and then each
    #       PostTag.tag (see kata_blog/models.py) (LZ2).
    raise NotImplementedError("get_post_detail")


async def list_posts_with_comments(db: AsyncSession) -> list[Post]:
    """Every post in id order, each with its comments, in a constant number of statements."""
    # TODO: one select of all the posts that also loads all their comments: no query per post
    #       (LZ2).
    raise NotImplementedError("list_posts_with_comments")
