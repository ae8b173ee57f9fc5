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


async def client_gone(request: Request) -> None:
    """Returns once the client has closed its connection (given).

    The server tells an app so through the ASGI `receive` channel: after the request's body, the
    next message is `http.disconnect`, sent when the client goes away (or once the response is
    complete). Nothing else in FastAPI reads it while an ordinary endpoint runs.
    """
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_client_leaves(request: Request, work) -> bool:
    """Await `work`, unless the client disconnects first: then cancel it. True when it finished
    (its error, if it raised one, is raised here), False when the client left first."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(client_gone(request))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Whichever lost is cancelled (a finished task ignores cancel): a query nobody waits for
        # is cancelled in PostgreSQL, and the watch of a client that got its answer ends.
        job.cancel()
        watch.cancel()
        await asyncio.wait({job, watch})  # the cancelled one has cleaned up: connection back
    if job.cancelled():
        return False
    job.result()  # the query's own error (a timeout, a DBAPIError), if it had one
    return True


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    """GET /reports/{report_id}?seconds=S runs QUERY; it gives up after `timeout` seconds."""
    app = FastAPI()

    async def run_report(seconds: float) -> None:
        async with engine.connect() as connection:
            await connection.execute(QUERY, {"seconds": seconds})

    @app.get("/reports/{report_id}")
    async def report(report_id: int, request: Request, seconds: float = 0.1):
        try:
            # wait_for cancels run_report at the deadline: asyncpg cancels the query in
            # PostgreSQL, and `async with` gives the connection back. (asyncio.timeout() does the
            # same on Python 3.11+; wait_for works on 3.10 too.) unless_client_leaves cancels it
            # the same way when the client goes away first: no server does that for us.
            finished = await unless_client_leaves(request, asyncio.wait_for(run_report(seconds), timeout))
        except asyncio.TimeoutError:  # the builtin TimeoutError on 3.11+, its own class on 3.10
            # 504: the database, the upstream this request depends on, did not answer in time.
            raise HTTPException(status_code=504, detail=f"report {report_id} took over {timeout} s") from None
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != QUERY_CANCELED:
                raise
            # The server-side guard stopped it first: the same story, the same answer.
            raise HTTPException(status_code=504, detail=f"report {report_id} stopped by the database") from error
        if not finished:
            # The client is gone and its query cancelled: nobody reads this answer (499 is the
            # "client closed request" of nginx's logs; uvicorn drops it).
            return Response(status_code=499)
        return {"report_id": report_id}

    return app
