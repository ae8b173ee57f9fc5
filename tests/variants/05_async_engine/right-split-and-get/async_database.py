"""Kata 05 - my async database module."""

import os

from dotenv import find_dotenv, load_dotenv
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

load_dotenv(find_dotenv(usecwd=True))

SYNC_DATABASE_URL = os.getenv("DATABASE_URL")

# whatever the scheme (postgres, postgresql, postgresql+psycopg2), keep everything after ://
_scheme, _rest = SYNC_DATABASE_URL.split("://", 1)
ASYNC_DATABASE_URL = "postgresql+asyncpg://" + _rest

async_engine = create_async_engine(ASYNC_DATABASE_URL)

# the plain sessionmaker also makes AsyncSession objects when told so
AsyncSessionLocal = sessionmaker(async_engine, class_=AsyncSession, expire_on_commit=False)


async def get_async_db():
    session = AsyncSessionLocal()
    try:
        yield session
    finally:
        await session.close()


async def create_post(db: AsyncSession, data: PostCreate) -> Post:
    new_post = Post(title=data.title, content=data.content)
    db.add(new_post)
    await db.commit()
    # get() finds the post already in the session: no query, the same object
    return await db.get(Post, new_post.id)
