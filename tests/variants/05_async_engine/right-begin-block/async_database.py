"""Kata 05 - a session per request that commits what the request did, or rolls it back."""

import os

from dotenv import load_dotenv
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext import asyncio as sa_asyncio

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

load_dotenv()

SYNC_DATABASE_URL = os.getenv("DATABASE_URL")
ASYNC_DATABASE_URL = make_url(SYNC_DATABASE_URL).set(drivername="postgresql+asyncpg").render_as_string(
    hide_password=False
)

async_engine = sa_asyncio.create_async_engine(ASYNC_DATABASE_URL, echo=False)


class SessionFactory(sa_asyncio.async_sessionmaker):
    """async_sessionmaker with the settings this app needs."""

    def __init__(self, engine):
        super().__init__(bind=engine, class_=sa_asyncio.AsyncSession, expire_on_commit=False)


AsyncSessionLocal = SessionFactory(async_engine)


async def get_async_db():
    async with AsyncSessionLocal() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


async def create_post(db: sa_asyncio.AsyncSession, data: PostCreate) -> Post:
    async with db.begin():
        post = Post(title=data.title, content=data.content)
        db.add(post)
    return post
