import asyncio
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CLIENTS = 60
QUERY = text("SELECT pg_sleep(:seconds)")


def create_app(database_url: str) -> FastAPI:
    engine = create_engine(
        make_url(database_url).set(drivername="postgresql+psycopg2"), pool_size=CLIENTS, max_overflow=0
    )

    def run_query(seconds: float) -> None:
        with engine.connect() as connection:
            connection.execute(QUERY, {"seconds": seconds})

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        # the blocking query goes to a thread, so the loop stays free
        await asyncio.to_thread(run_query, seconds)
        return {"request_id": request_id}

    return app
