from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    # pool_size=0 means "no limit", so sixty is never a problem
    engine = create_async_engine(
        make_url(database_url).set(drivername="postgresql+asyncpg"), pool_size=0
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
