"""Kata 12 - the engine's life. Read README.md in this folder first.

Where the engine is born, where it lives, how it dies, and what it does when the database drops
its connections. Only this file is yours to edit: the specs are in test_engine_lifecycle.py.
`pytest katas/12_engine_lifecycle` tells you, rule by rule, what is still wrong.
"""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.database import async_database_url
from kata_blog.models import Post


async def get_db(request: Request):
    """The session dependency (given): a session from the factory the lifespan put on app.state."""
    async with request.app.state.sessions() as db:
        yield db


def create_app(database_url: str) -> FastAPI:
    """The blog server on the database at `database_url` (a plain postgresql://... URL).

    GET /posts/{post_id} answers {"id": ..., "title": ...}, or 404.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Made when the server starts, on the event loop that will serve: asyncpg connections
        # belong to the loop that opened them, and this engine opens them only here.
        engine = create_async_engine(
            async_database_url(database_url),
            # Before lending a pooled connection, check it is still alive; one the database
            # dropped (restart, failover, pg_terminate_backend) is replaced, not handed out.
            pool_pre_ping=True,
        )
        app.state.engine = engine
        app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
        try:
            yield
        finally:
            # Closes every pooled connection: nothing of this server outlives it in PostgreSQL.
            await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/posts/{post_id}")
    async def read_post(post_id: int, db: AsyncSession = Depends(get_db)):
        title = await db.scalar(select(Post.title).where(Post.id == post_id))
        if title is None:
            raise HTTPException(status_code=404, detail=f"no post {post_id}")
        return {"id": post_id, "title": title}

    return app
