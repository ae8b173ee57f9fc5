"""Kata 07 - the async post router. Read README.md in this folder first.

The notes' router (routes under /async/posts), on an AsyncSession from kata_blog.database. Write the
TODOs; `pytest katas/07_async_router` tells you, rule by rule, what is still wrong. Only this
file is yours to edit: the specs are in test_async_router.py.
"""

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from kata_blog.database import get_async_db
from kata_blog.models import Post, PostTag
from kata_blog.schemas import PostCreate, PostDetailResponse, PostListResponse

router = APIRouter(prefix="/async/posts", tags=["Async Posts"])

# Everything PostDetailResponse reads: post.comments, and post.tags (post_tags, then each tag).
WITH_COMMENTS_AND_TAGS = (
    selectinload(Post.comments),
    selectinload(Post.post_tags).selectinload(PostTag.tag),
)


async def get_post_or_404(db: AsyncSession, post_id: int, *options) -> Post:
    """The post with this id, loaded with `options`; HTTP 404 when there is none."""
    result = await db.scalars(select(Post).where(Post.id == post_id).options(*options))
    # one_or_none, not one(): a missing post is the client's mistake (404), not a crash (500).
    post = result.one_or_none()
    if post is None:
        raise HTTPException(status_code=404, detail=f"Post {post_id} not found")
    return post


@router.get("/", response_model=list[PostListResponse])
async def get_posts(db: AsyncSession = Depends(get_async_db)):
    """Every post: the same query as in sync code, only awaited."""
    result = await db.scalars(select(Post).order_by(Post.id))
    return result.all()


@router.get("/{post_id}/lazy", response_model=PostDetailResponse)
async def get_post_lazy(post_id: int, db: AsyncSession = Depends(get_async_db)):
    """The notes' failing example: comments and tags are not loaded, so the response cannot be built."""
    post = await get_post_or_404(db, post_id)
    # Kept lazy on purpose: building PostDetailResponse reads post.comments -> MissingGreenlet.
    return post


@router.get("/{post_id}/selectin", response_model=PostDetailResponse)
async def get_post_selectin(post_id: int, db: AsyncSession = Depends(get_async_db)):
    """The post with its comments and tags, all loaded by the query itself."""
    # Eager loading in the query: building the response reads only what is already in memory.
    return await get_post_or_404(db, post_id, *WITH_COMMENTS_AND_TAGS)


@router.put("/{post_id}/lazy", response_model=PostDetailResponse)
async def update_post_lazy(
    post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)
):
    """The notes' failing update: it commits, then fails while building the response."""
    post = await get_post_or_404(db, post_id)
    post.title = data.title
    post.content = data.content
    # The update is committed here, before the response fails: the client's 500 hides a change.
    await db.commit()
    return post


@router.put("/{post_id}/selectin", response_model=PostDetailResponse)
async def update_post_selectin(
    post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)
):
    """Update title and content, commit, and answer with the eager-loaded detail."""
    post = await get_post_or_404(db, post_id)
    post.title = data.title
    post.content = data.content
    await db.commit()  # awaited: without it nothing is written, and the session rolls back
    # The committed object never loaded its relationships: query it again, with them.
    return await get_post_or_404(db, post_id, *WITH_COMMENTS_AND_TAGS)
