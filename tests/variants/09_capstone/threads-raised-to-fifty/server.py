from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI
from sqlalchemy import create_engine, text

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    engine = create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg2://"),
        pool_size=60,
        max_overflow=5,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        limiter = to_thread.current_default_thread_limiter()
        limiter.total_tokens = 50  # 40 was not enough
        yield
        engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    def work(request_id: int, seconds: float = 0.1):
        with engine.connect() as connection:
            connection.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
