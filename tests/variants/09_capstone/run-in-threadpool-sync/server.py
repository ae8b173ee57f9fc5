from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import create_engine, text

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    engine = create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg2://"), pool_size=60, max_overflow=0
    )

    def query(seconds):
        with engine.connect() as conn:
            conn.execute(QUERY, {"seconds": seconds})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        await run_in_threadpool(query, seconds)
        return {"request_id": request_id}

    return app
