"""Kata 09 - the capstone: one server, sixty clients at once. Read README.md in this folder first.

Only this file is yours to edit; the specs are in test_capstone.py. `pytest katas/09_capstone`
tells you, rule by rule, what still caps your server.

The load: CLIENTS requests arrive at the same moment, and each one runs QUERY on PostgreSQL.
The budget: every client answered in about one query's time. Only a server that runs all of
those queries at the same time can meet it; the specs count how many it really runs at once.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kata_blog.database import async_database_url

CLIENTS = 60  # requests that arrive at the same moment (given: the specs send this many)
QUERY = text("SELECT pg_sleep(:seconds)")  # the work of one request (given)


def create_app(database_url: str) -> FastAPI:
    """The server. `database_url` is a plain postgresql://... URL, as DATABASE_URL holds it.

    - GET /work/{request_id}?seconds=S runs QUERY once with S, then answers
      {"request_id": request_id};
    - the app keeps its engine on app.state.engine (the specs read its pool there) and disposes
      it when the server shuts down.
    """
    engine = create_async_engine(
        async_database_url(database_url),  # asyncpg: a waiting query is an await, not a held thread
        pool_size=CLIENTS,  # sixty queries at once need sixty connections (CP3, CP7)
        max_overflow=0,  # pool_size + max_overflow is the cap: 60 + 0
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await engine.dispose()  # no connection outlives the server

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    @app.get("/work/{request_id}")
    async def work(request_id: int, seconds: float = 0.1):
        # async def runs on the loop itself: no worker thread to wait for (TP2), and while this
        # query awaits, the loop starts the other fifty-nine (EL3).
        async with engine.connect() as connection:
            await connection.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
