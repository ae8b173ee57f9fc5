"""Kata 11 - timeouts and cancellation (a learner's solution)."""

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kata_blog.database import async_database_url

QUERY = text("SELECT pg_sleep(:seconds)")
QUERY_CANCELED = "57014"


def make_engine(database_url, statement_timeout):
    engine = create_async_engine(async_database_url(database_url))

    @event.listens_for(engine.sync_engine, "connect")
    def set_statement_timeout(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET statement_timeout = {int(statement_timeout * 1000)}")
        cursor.close()
        dbapi_connection.commit()  # or the pool's rollback on return undoes the SET

    return engine


def create_app(engine, timeout):
    app = FastAPI()

    @app.exception_handler(asyncio.TimeoutError)
    async def on_timeout(request: Request, exc):
        return JSONResponse({"detail": "the database did not answer in time"}, status_code=504)

    @app.exception_handler(DBAPIError)
    async def on_db_error(request: Request, exc: DBAPIError):
        if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
            return JSONResponse({"detail": "stopped by statement_timeout"}, status_code=504)
        return JSONResponse({"detail": "database error"}, status_code=500)

    @app.get("/reports/{report_id}")
    async def report(report_id: int, request: Request, seconds: float = 0.1):
        async def work():
            async with engine.connect() as conn:
                await conn.execute(QUERY, {"seconds": seconds})

        job = asyncio.ensure_future(asyncio.wait_for(work(), timeout=timeout))
        try:
            while not job.done():
                if await request.is_disconnected():
                    job.cancel()
                    break
                await asyncio.wait({job}, timeout=0.05)
        finally:
            job.cancel()
            await asyncio.wait({job})
        if job.cancelled():
            return JSONResponse({"detail": "client went away"}, status_code=499)
        job.result()  # TimeoutError / DBAPIError go to the exception handlers
        return {"report_id": report_id}

    return app
