"""Kata 06 - loader options given to db.get, and a re-select for a post in hand."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload as eager

from kata_blog.models import Comment, Post, PostTag


def detail_options():
    return [eager(Post.comments), eager(Post.post_tags).selectinload(PostTag.tag)]


async def get_post_lazy(db: AsyncSession, post_id: int) -> Post:
    post = await db.get(Post, post_id)
    return post


async def load_comments(db: AsyncSession, post: Post) -> list[Comment]:
    # selecting the same post again with the option fills in its unloaded comments
    stmt = select(Post).where(Post.id == post.id).options(eager(Post.comments))
    same = (await db.execute(stmt)).scalar_one()
    return same.comments


async def get_post_with_comments(db: AsyncSession, post_id: int) -> Post:
    return await db.get(Post, post_id, options=[eager(Post.comments)])


async def get_post_detail(db: AsyncSession, post_id: int) -> Post:
    return await db.get(Post, post_id, options=detail_options())


async def list_posts_with_comments(db: AsyncSession) -> list[Post]:
    result = await db.execute(select(Post).options(eager(Post.comments)).order_by(Post.id.asc()))
    return result.scalars().all()
