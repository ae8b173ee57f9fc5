from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_blog.database import async_database_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    # keep 10 warm, let the overflow grow as much as the load needs
    engine = create_async_engine(async_database_url(database_url), pool_size=10, max_overflow=-1)

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
