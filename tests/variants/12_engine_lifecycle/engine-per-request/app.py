"""Kata 12 - the engine's life (a learner's solution)."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.database import async_database_url
from kata_blog.models import Post


async def get_db(request: Request):
    # a fresh engine per request: never a stale connection
    engine = create_async_engine(request.app.state.url)
    try:
        async with async_sessionmaker(engine)() as db:
            yield db
    finally:
        pass


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.url = async_database_url(database_url)
        app.state.engine = create_async_engine(app.state.url)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/posts/{post_id}")
    async def read_post(post_id: int, db: AsyncSession = Depends(get_db)):
        post = await db.get(Post, post_id)
        if post is None:
            raise HTTPException(404)
        return {"id": post.id, "title": post.title}

    return app
