"""Kata 05 - the async engine. Read README.md in this folder first.

The async database module of the course notes: one DATABASE_URL (from the environment or a .env
file), an async engine on the asyncpg driver, a session factory and the FastAPI dependency.
`pytest katas/05_async_engine` tells you, rule by rule, what is still wrong. Only this file is
yours to edit: the specs are in test_async_engine.py.
"""

import os

from dotenv import load_dotenv
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

# TODO: let a .env file supply DATABASE_URL when the environment has none (python-dotenv).

SYNC_DATABASE_URL = os.getenv("DATABASE_URL")

# TODO: the same database, through the async driver asyncpg. This is the notes' line: it works
#       for postgresql://... only. The specs show which other DATABASE_URLs it gets wrong.
ASYNC_DATABASE_URL = SYNC_DATABASE_URL.replace("postgresql://", "postgresql+asyncpg://")

# TODO: the async engine on ASYNC_DATABASE_URL, with the notes' pool options.
async_engine = None

# TODO: the session factory: AsyncSession objects on async_engine whose attributes stay readable
#       after a commit.
AsyncSessionLocal = None


async def get_async_db():
    """The FastAPI dependency: one AsyncSession per request, closed after the response."""
    # TODO: one session per request, closed afterwards, also when the endpoint raised.
    raise NotImplementedError("get_async_db")


async def create_post(db: AsyncSession, data: PostCreate) -> Post:
    """Save a new post from `data` and return it, committed, with its id."""
    # TODO: stage a Post in the session, commit it, return it.
    raise NotImplementedError("create_post")
