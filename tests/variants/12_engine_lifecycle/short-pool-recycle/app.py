"""Kata 12 - the engine's life (a learner's solution)."""

from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.database import async_database_url
from kata_blog.models import Post


async def get_db(request: Request):
    async with request.app.state.sessions() as db:
        yield db


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with AsyncExitStack() as stack:
            engine = create_async_engine(async_database_url(database_url), pool_recycle=300, pool_size=3)
            stack.push_async_callback(engine.dispose)
            app.state.engine = engine
            app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/posts/{post_id}")
    async def read_post(post_id: int, db: AsyncSession = Depends(get_db)):
        post = await db.get(Post, post_id)
        if post is None:
            raise HTTPException(404)
        return {"id": post.id, "title": post.title}

    return app
