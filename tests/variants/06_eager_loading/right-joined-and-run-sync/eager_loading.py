"""Kata 06 - eager loading with joinedload, and run_sync for a post in hand."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from kata_blog.models import Comment, Post, PostTag


async def get_post_lazy(db: AsyncSession, post_id: int) -> Post:
    return await db.get(Post, post_id)


async def load_comments(db: AsyncSession, post: Post) -> list[Comment]:
    # inside run_sync the plain attribute read may lazy load: it runs where SQLAlchemy can await
    return await db.run_sync(lambda session: list(post.comments))


async def get_post_with_comments(db: AsyncSession, post_id: int) -> Post:
    stmt = select(Post).options(joinedload(Post.comments)).where(Post.id == post_id)
    result = await db.execute(stmt)
    return result.unique().scalar_one()


async def get_post_detail(db: AsyncSession, post_id: int) -> Post:
    stmt = (
        select(Post)
        .where(Post.id == post_id)
        .options(
            joinedload(Post.comments),
            joinedload(Post.post_tags).joinedload(PostTag.tag),
        )
    )
    result = await db.execute(stmt)
    return result.unique().scalar_one()


async def list_posts_with_comments(db: AsyncSession) -> list[Post]:
    stmt = select(Post).options(joinedload(Post.comments)).order_by(Post.id)
    result = await db.scalars(stmt)
    return list(result.unique().all())
