from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_blog.database import async_database_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    # plenty of room: sixty now, and twice that for a traffic peak
    engine = create_async_engine(
        async_database_url(database_url), pool_size=CLIENTS, max_overflow=2 * CLIENTS
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        async with engine.connect() as connection:
            await connection.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
