"""Kata 11 - timeouts and cancellation. Read README.md in this folder first.

A report endpoint runs a query that can be slow. The request must give up in time, answer with
the status code that says what happened, give its connection back, and leave nothing running in
PostgreSQL; it must stop its query when the client goes away before the answer; and the database
must stop a runaway query even when no request is waiting for it.
Only this file is yours to edit: the specs are in test_timeouts.py.
"""

import asyncio

from fastapi import FastAPI, HTTPException, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kata_blog.database import async_database_url

QUERY = text("SELECT pg_sleep(:seconds)")  # the report (given): as slow as `seconds` says
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement it stopped (statement_timeout)


def make_engine(database_url: str, statement_timeout: float) -> AsyncEngine:
    """An async engine whose statements PostgreSQL stops after `statement_timeout` seconds."""
    # TODO: as given, PostgreSQL lets a statement run for ever. Set a server-side guard of
    #       `statement_timeout` seconds on every connection this engine opens.
    return create_async_engine(async_database_url(database_url))


async def client_gone(request: Request) -> None:
    """Returns once the client has closed its connection (given).

    The server tells an app so through the ASGI `receive` channel: after the request's body, the
    next message is `http.disconnect`, sent when the client goes away (or once the response is
    complete). Nothing else in FastAPI reads it while an ordinary endpoint runs.
    """
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    """GET /reports/{report_id}?seconds=S runs QUERY; it gives up after `timeout` seconds."""
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, seconds: float = 0.1):
        # TODO: as given, the request waits as long as the query takes. Give up after `timeout`
        #       seconds, answer with the status code that says why, and leave nothing behind
        #       (no connection checked out, no query running in PostgreSQL). And when the
        #       database's guard stops the query first, the client must get the same answer.
        # TODO: and when the client goes away before the answer (closes its connection), stop the
        #       query at once: neither uvicorn nor FastAPI cancels this endpoint for you. The
        #       given client_gone(request) returns when that happens.
        async with engine.connect() as connection:
            await connection.execute(QUERY, {"seconds": seconds})
        return {"report_id": report_id}

    return app
