"""Kata 12 - the engine's life (a learner's solution)."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.database import async_database_url
from kata_blog.models import Post


async def get_db(request: Request):
    async with request.app.state.sessions() as db:
        yield db


class Database:
    """The app's database: opened at start-up, closed at shutdown."""

    def __init__(self, url: str):
        self.url = async_database_url(url)
        self.engine = None
        self.sessions = None

    async def connect(self):
        self.engine = create_async_engine(self.url, pool_pre_ping=True, pool_recycle=1800)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def close(self):
        if self.engine is not None:
            await self.engine.dispose()


def create_app(database_url: str) -> FastAPI:
    database = Database(database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await database.connect()
        app.state.engine, app.state.sessions = database.engine, database.sessions
        try:
            yield
        finally:
            await database.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/posts/{post_id}")
    async def read_post(post_id: int, db: AsyncSession = Depends(get_db)):
        post = await db.get(Post, post_id)
        if post is None:
            raise HTTPException(404)
        return {"id": post.id, "title": post.title}

    return app
