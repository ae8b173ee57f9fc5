import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_blog.database import async_database_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")
MAX_DB_CALLS = 40  # protect the database


def create_app(database_url: str) -> FastAPI:
    engine = create_async_engine(async_database_url(database_url), pool_size=CLIENTS, max_overflow=0)
    gate = asyncio.Semaphore(MAX_DB_CALLS)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        async with gate, engine.connect() as connection:
            await connection.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
