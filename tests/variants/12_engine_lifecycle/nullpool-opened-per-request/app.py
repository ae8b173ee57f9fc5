"""Kata 12, a learner's version: no pool at all, so nothing can be left in one."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from kata_blog.database import async_database_url
from kata_blog.models import Post


async def get_db(request: Request):
    async with request.app.state.sessions() as db:
        yield db


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Every session opens its own connection and closes it when it ends: a dropped one is
        # never handed out again, because none is ever kept.
        app.state.engine = create_async_engine(async_database_url(database_url), poolclass=NullPool)
        app.state.sessions = async_sessionmaker(app.state.engine, expire_on_commit=False)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/posts/{post_id}")
    async def one_post(post_id: int, db: AsyncSession = Depends(get_db)):
        post = await db.get(Post, post_id)
        if post is None:
            raise HTTPException(404, f"post {post_id} not found")
        return {"id": post.id, "title": post.title}

    return app
