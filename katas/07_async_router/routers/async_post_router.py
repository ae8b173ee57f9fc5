"""Kata 07 - the async post router. Read README.md in this folder first.

The notes' router (routes under /async/posts), on an AsyncSession from kata_blog.database. Write the
TODOs; `pytest katas/07_async_router` tells you, rule by rule, what is still wrong. Only this
file is yours to edit: the specs are in test_async_router.py.
"""

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from kata_blog.database import get_async_db
from kata_blog.models import Post, PostTag
from kata_blog.schemas import PostCreate, PostDetailResponse, PostListResponse

router = APIRouter(prefix="/async/posts", tags=["Async Posts"])


@router.get("/", response_model=list[PostListResponse])
async def get_posts(db: AsyncSession = Depends(get_async_db)):
    """Every post: the same query as in sync code, only awaited (the notes' code)."""
    stmt = select(Post)
    result = await db.scalars(stmt)
    posts = result.all()
    return posts


@router.get("/{post_id}/lazy", response_model=PostDetailResponse)
async def get_post_lazy(post_id: int, db: AsyncSession = Depends(get_async_db)):
    """The notes' failing example: comments and tags are not loaded, so the response cannot be built.

    Keep it failing that way (it is the demonstration); only a missing post must become 404.
    """
    post = await db.get(Post, post_id)
    # TODO: a missing post: db.get returned None. Answer 404 instead of crashing (RT4).
    return post


@router.get("/{post_id}/selectin", response_model=PostDetailResponse)
async def get_post_selectin(post_id: int, db: AsyncSession = Depends(get_async_db)):
    """The post with its comments and tags, loaded by the query itself; 404 when it is missing."""
    # TODO: select the post with its comments and its tags loaded in the same query (RT2),
    #       and answer 404 when there is no such post (RT4).
    raise NotImplementedError("get_post_selectin")


@router.put("/{post_id}/lazy", response_model=PostDetailResponse)
async def update_post_lazy(
    post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)
):
    """The notes' failing update: it commits, then fails while building the response.

    Keep it failing that way (it is the demonstration); only a missing post must become 404.
    """
    post = await db.get(Post, post_id)
    # TODO: a missing post: db.get returned None. Answer 404 instead of crashing (RT4).
    post.title = data.title
    post.content = data.content
    await db.commit()
    return post


@router.put("/{post_id}/selectin", response_model=PostDetailResponse)
async def update_post_selectin(
    post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)
):
    """Update title and content, commit, and answer with the detail: comments and tags included."""
    # TODO: load the post (404 when missing, RT4), set title and content, commit (RT3),
    #       then answer with the post queried again with its comments and tags (LZ3).
    raise NotImplementedError("update_post_selectin")
