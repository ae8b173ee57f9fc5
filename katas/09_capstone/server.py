"""Kata 09 - the capstone: one server, sixty clients at once. Read README.md in this folder first.

Only this file is yours to edit; the specs are in test_capstone.py. `pytest katas/09_capstone`
tells you, rule by rule, what still caps your server.

The load: CLIENTS requests arrive at the same moment, and each one runs QUERY on PostgreSQL.
The budget: every client answered in about one query's time. Only a server that runs all of
those queries at the same time can meet it; the specs count how many it really runs at once.
"""

from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CLIENTS = 60  # requests that arrive at the same moment (given: the specs send this many)
QUERY = text("SELECT pg_sleep(:seconds)")  # the work of one request (given)


def create_app(database_url: str) -> FastAPI:
    """The server. `database_url` is a plain postgresql://... URL, as DATABASE_URL holds it.

    - GET /work/{request_id}?seconds=S runs QUERY once with S, then answers
      {"request_id": request_id};
    - the app keeps its engine on app.state.engine (the specs read its pool there) and disposes
      it when the server shuts down.

    As given, this is the course notes' synchronous server. It works, one wave at a time.
    """
    # TODO: a sync engine with the default pool: at most 5 + 10 connections at once, and every
    # query holds a thread while it waits. Choose the engine (and its pool) that the load needs.
    engine = create_engine(make_url(database_url).set(drivername="postgresql+psycopg2"))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # TODO: whatever the server must set up on its own event loop at start goes here.
        yield
        engine.dispose()  # no connection outlives the server

    app = FastAPI(lifespan=lifespan)
    app.state.engine = engine

    # TODO: a def endpoint runs on one of anyio's worker threads (40 by default), and holds it
    # for as long as its query waits. Make the endpoint fit the engine you chose.
    @app.get("/work/{request_id}")
    def work(request_id: int, seconds: float = 0.1):
        with engine.connect() as connection:
            connection.execute(QUERY, {"seconds": seconds})
        return {"request_id": request_id}

    return app
