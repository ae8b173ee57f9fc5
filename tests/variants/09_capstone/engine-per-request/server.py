from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_blog.database import async_database_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    url = async_database_url(database_url)
    app_engine = create_async_engine(url, pool_size=CLIENTS, max_overflow=0)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await app_engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = app_engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        # a fresh engine per request, so no request ever waits for another one's connection
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                await connection.execute(QUERY, {"seconds": seconds})
        finally:
            await engine.dispose()
        return {"request_id": request_id}

    return app
