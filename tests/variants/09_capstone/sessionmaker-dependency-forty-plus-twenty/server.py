from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as make_engine

from kata_blog.database import async_database_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


class Server:
    def __init__(self, database_url: str):
        self.engine = make_engine(async_database_url(database_url), pool_size=40, max_overflow=20)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def get_db(self):
        async with self.sessions() as session:
            yield session


def create_app(database_url: str) -> FastAPI:
    server = Server(database_url)

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            await server.engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = server.engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1, db: AsyncSession = Depends(server.get_db)):
        await db.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
