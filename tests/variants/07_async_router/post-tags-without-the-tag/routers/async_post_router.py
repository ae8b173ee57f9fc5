from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from kata_blog.database import get_async_db
from kata_blog.models import Post, PostTag
from kata_blog.schemas import PostCreate, PostDetailResponse, PostListResponse

router = APIRouter(prefix="/async/posts", tags=["Async Posts"])


def detail_query(post_id: int):
    # one round trip: comments, post_tags and their tags joined in
    return (
        select(Post)
        .where(Post.id == post_id)
        .options(joinedload(Post.comments), joinedload(Post.post_tags))
    )


async def load_detail(db: AsyncSession, post_id: int) -> Post:
    result = await db.execute(detail_query(post_id))
    post = result.unique().scalar_one_or_none()  # joined collections need unique()
    if post is None:
        raise HTTPException(status_code=404, detail="Post not found")
    return post


@router.get("/", response_model=list[PostListResponse])
async def get_posts(db: AsyncSession = Depends(get_async_db)):
    result = await db.scalars(select(Post))
    return result.all()


@router.get("/{post_id}/lazy", response_model=PostDetailResponse)
async def get_post_lazy(post_id: int, db: AsyncSession = Depends(get_async_db)):
    post = await db.get(Post, post_id)
    if not post:
        raise HTTPException(status_code=404, detail="Post not found")
    return post


@router.get("/{post_id}/selectin", response_model=PostDetailResponse)
async def get_post_selectin(post_id: int, db: AsyncSession = Depends(get_async_db)):
    return await load_detail(db, post_id)


@router.put("/{post_id}/lazy", response_model=PostDetailResponse)
async def update_post_lazy(post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)):
    post = await db.get(Post, post_id)
    if not post:
        raise HTTPException(status_code=404, detail="Post not found")
    post.title = data.title
    post.content = data.content
    await db.commit()
    return post


@router.put("/{post_id}/selectin", response_model=PostDetailResponse)
async def update_post_selectin(post_id: int, data: PostCreate, db: AsyncSession = Depends(get_async_db)):
    post = await db.get(Post, post_id)
    if not post:
        raise HTTPException(status_code=404, detail="Post not found")
    post.title = data.title
    post.content = data.content
    await db.commit()
    return await load_detail(db, post_id)
