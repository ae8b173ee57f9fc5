"""Kata 06 - eager loading. Read README.md in this folder first.

Async query functions over the blog models. In async code a relationship must be loaded before it
is read: `pytest katas/06_eager_loading` tells you, rule by rule, what is still wrong. Only this
file is yours to edit: the specs are in test_eager_loading.py. Every function gets an open
AsyncSession `db`; post ids name posts that exist.
"""

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from kata_blog.models import Comment, Post, PostTag


async def get_post_lazy(db: AsyncSession, post_id: int) -> Post:
    """The notes' /lazy route: the post by its primary key, its relationships left unloaded."""
    # One SELECT of the posts row; comments and post_tags stay unloaded (lazy="select").
    return await db.get(Post, post_id)


async def load_comments(db: AsyncSession, post: Post) -> list[Comment]:
    """Load the comments of a post you already hold, so that post.comments reads; return them."""
    # refresh with the attribute's name runs the relationship's SELECT now, where it can be awaited.
    await db.refresh(post, attribute_names=["comments"])
    return post.comments


async def get_post_with_comments(db: AsyncSession, post_id: int) -> Post:
    """The post with its comments loaded by the query itself."""
    # selectinload: a second SELECT ... WHERE post_id IN (...) runs with the query, awaited.
    stmt = select(Post).where(Post.id == post_id).options(selectinload(Post.comments))
    return (await db.scalars(stmt)).one()


async def get_post_detail(db: AsyncSession, post_id: int) -> Post:
    """The post with its comments and its tags: everything PostDetailResponse reads."""
    stmt = (
        select(Post)
        .where(Post.id == post_id)
        .options(
            selectinload(Post.comments),
            # post.tags walks post_tags and then each PostTag.tag: both steps must be loaded.
            selectinload(Post.post_tags).joinedload(PostTag.tag),
        )
    )
    return (await db.scalars(stmt)).one()


async def list_posts_with_comments(db: AsyncSession) -> list[Post]:
    """Every post in id order, each with its comments, in a constant number of statements."""
    # One SELECT for the posts, then one for their comments per 500 posts (selectinload batches
    # 500 parents a statement): 2 statements up to 500 posts, 1 + 10 for 5000.
    posts = list((await db.scalars(select(Post).order_by(Post.id))).all())
    # load all the comments at the same time instead of one after another
    await asyncio.gather(*(db.refresh(post, ["comments"]) for post in posts))
    return posts
