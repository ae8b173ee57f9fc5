from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    async_url = database_url.replace("postgresql://", "postgresql+asyncpg://", 1)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the engine is born on the loop that serves
        app.state.engine = create_async_engine(async_url, pool_size=50, max_overflow=15)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/work/{request_id}")
    async def work(request_id: int, request: Request, seconds: float = 0.1):
        engine = request.app.state.engine
        async with engine.begin() as conn:
            await conn.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
