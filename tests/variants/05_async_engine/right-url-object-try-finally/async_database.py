"""Kata 05 - async engine, with the URL kept as a URL object."""

import os

import dotenv
from sqlalchemy import URL, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

dotenv.load_dotenv(override=False)

SYNC_DATABASE_URL = os.environ.get("DATABASE_URL")


def to_async(url: str) -> URL:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg")


ASYNC_DATABASE_URL = to_async(SYNC_DATABASE_URL)  # a URL object keeps the password

async_engine = create_async_engine(
    ASYNC_DATABASE_URL, pool_size=5, max_overflow=10, pool_timeout=30, pool_recycle=1800
)

AsyncSessionLocal = async_sessionmaker(async_engine, expire_on_commit=False)


async def get_async_db():
    db = AsyncSessionLocal()
    try:
        yield db
    except Exception:
        await db.rollback()
        raise
    finally:
        await db.close()


async def create_post(db: AsyncSession, data: PostCreate) -> Post:
    post = Post(**data.model_dump())
    db.add(post)
    await db.flush()  # the INSERT runs here and the id is filled in
    await db.commit()
    await db.refresh(post)  # refresh returns None; the post itself is refreshed
    return post
