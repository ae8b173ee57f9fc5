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
    return create_async_engine(
        async_database_url(database_url),
        # Set on every connection the pool opens: the server itself stops a statement that runs
        # longer, even when no client is left to cancel it. (asyncpg takes milliseconds here.)
        connect_args={"server_settings": {"statement_timeout": str(int(statement_timeout * 1000))}},
    )


async def run_report_on(engine, seconds):
    async with engine.connect() as connection:
        await connection.execute(QUERY, {"seconds": seconds})


async def client_gone(request):
    while (await request.receive())["type"] != "http.disconnect":
        pass


def answer(task, report_id):
    try:
        task.result()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
        raise HTTPException(status_code=504, detail="stopped") from error
    return {"report_id": report_id}


def create_app(engine, timeout):
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, request: Request, seconds: float = 0.1):
        task = asyncio.ensure_future(asyncio.wait_for(run_report_on(engine, seconds), timeout))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.2)
                if not task.done() and await request.is_disconnected():
                    return Response(status_code=499)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        try:
            return answer(task, report_id)
        except asyncio.TimeoutError:
            raise HTTPException(status_code=504, detail="late") from None

    return app
