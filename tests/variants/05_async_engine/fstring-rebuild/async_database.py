"""Kata 05 - async database module."""

import os

from dotenv import load_dotenv
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

load_dotenv()

SYNC_DATABASE_URL = os.getenv("DATABASE_URL")

# rebuild the URL with the asyncpg driver from its parts
_u = make_url(SYNC_DATABASE_URL)
ASYNC_DATABASE_URL = (
    f"postgresql+asyncpg://{_u.username}:{_u.password or ''}@{_u.host or ''}"
    f"{':' + str(_u.port) if _u.port else ''}/{_u.database}"
)

async_engine = create_async_engine(ASYNC_DATABASE_URL, pool_size=5, max_overflow=10)

AsyncSessionLocal = async_sessionmaker(
    bind=async_engine, class_=AsyncSession, expire_on_commit=False
)


async def get_async_db():
    async with AsyncSessionLocal() as session:
        yield session


async def create_post(db: AsyncSession, data: PostCreate) -> Post:
    post = Post(**data.model_dump())
    db.add(post)
    await db.commit()
    return post
