"""Kata 05 - the async engine. Read README.md in this folder first.

The async database module of the course notes: one DATABASE_URL (from the environment or a .env
file), an async engine on the asyncpg driver, a session factory and the FastAPI dependency.
`pytest katas/05_async_engine` tells you, rule by rule, what is still wrong. Only this file is
yours to edit: the specs are in test_async_engine.py.
"""

import os

from dotenv import load_dotenv
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Post
from kata_blog.schemas import PostCreate

# Fills os.environ from a .env file, but never overrides a variable the environment already has.
load_dotenv()

SYNC_DATABASE_URL = os.getenv("DATABASE_URL")

# Parse, then swap only the driver: works for postgresql://, postgres:// and
# postgresql+psycopg2:// alike, where str.replace("postgresql://", ...) misses the last two.
# render_as_string keeps the password; str(url) would turn it into ***.
ASYNC_DATABASE_URL = (
    make_url(SYNC_DATABASE_URL)
    .set(drivername="postgresql+asyncpg")
    .render_as_string(hide_password=False)
)

async_engine = create_async_engine(
    ASYNC_DATABASE_URL,
    pool_size=5,  # connections kept open in the pool (the default)
    max_overflow=10,  # extra connections under load, closed when returned (the default)
    pool_pre_ping=True,  # a connection the server dropped is replaced, not handed out
)

AsyncSessionLocal = async_sessionmaker(
    bind=async_engine,
    class_=AsyncSession,
    # Commit must not expire loaded attributes: reloading one would need an await (MissingGreenlet).
    expire_on_commit=False,
)


async def get_async_db():
    """The FastAPI dependency: one AsyncSession per request, closed after the response."""
    # async with closes the session however the request ends; closing rolls back what was not
    # committed and gives the connection back to the pool, also when the endpoint raised.
    session = AsyncSessionLocal()
    try:
        yield session
    except Exception:
        await session.rollback()
        raise


async def create_post(db: AsyncSession, data: PostCreate) -> Post:
    """Save a new post from `data` and return it, committed, with its id."""
    post = Post(title=data.title, content=data.content)
    db.add(post)  # only stages the object in the session: no I/O, nothing to await
    await db.commit()  # talks to the database: a coroutine, so it must be awaited
    return post
