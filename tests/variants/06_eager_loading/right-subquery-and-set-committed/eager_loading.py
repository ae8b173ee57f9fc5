"""Kata 06 - subqueryload, and comments set onto a post as if loaded."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload, subqueryload
from sqlalchemy.orm.attributes import set_committed_value

from kata_blog.models import Comment, Post, PostTag


class PostQueries:
    """The queries of the post pages."""

    @staticmethod
    def one(post_id: int):
        return select(Post).where(Post.id == post_id)

    @staticmethod
    def all():
        return select(Post).order_by(Post.id)


async def get_post_lazy(db: AsyncSession, post_id: int) -> Post:
    return await db.get(Post, post_id)


async def load_comments(db: AsyncSession, post: Post) -> list[Comment]:
    stmt = select(Comment).where(Comment.post_id == post.id).order_by(Comment.id)
    comments = list((await db.scalars(stmt)).all())
    # set as loaded, without marking the post as changed
    set_committed_value(post, "comments", comments)
    return comments


async def get_post_with_comments(db: AsyncSession, post_id: int) -> Post:
    rows = await db.scalars(PostQueries.one(post_id).options(subqueryload(Post.comments)))
    return rows.one()


async def get_post_detail(db: AsyncSession, post_id: int) -> Post:
    stmt = PostQueries.one(post_id).options(
        subqueryload(Post.comments),
        selectinload(Post.post_tags).selectinload(PostTag.tag),
    )
    return (await db.scalars(stmt)).one()


async def list_posts_with_comments(db: AsyncSession) -> list[Post]:
    rows = await db.scalars(PostQueries.all().options(subqueryload(Post.comments)))
    return list(rows)
