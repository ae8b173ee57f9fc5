"""Kata 11 - timeouts and cancellation (a learner's solution)."""

import asyncio

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kata_blog.database import async_database_url

QUERY = text("SELECT pg_sleep(:seconds)")
QUERY_CANCELED = "57014"


def make_engine(database_url: str, statement_timeout: float) -> AsyncEngine:
    ms = round(statement_timeout * 1000)
    return create_async_engine(
        async_database_url(database_url),
        pool_pre_ping=True,
        connect_args={"server_settings": {"statement_timeout": f"{ms}ms"}},
    )


async def _run(engine, seconds):
    async with engine.connect() as conn:
        await conn.execute(QUERY, {"seconds": seconds})


def _stopped_by_server(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == QUERY_CANCELED or "statement timeout" in str(error)


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _cancel(*tasks) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, request: Request, seconds: float = 0.1):
        run = asyncio.ensure_future(asyncio.wait_for(_run(engine, seconds), timeout))
        watch = asyncio.ensure_future(_until_disconnect(request.receive))
        try:
            done, _ = await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel(run, watch)
        if run not in done:
            return JSONResponse({"detail": "client closed request"}, status_code=499)
        try:
            run.result()
        except asyncio.TimeoutError:
            return JSONResponse({"detail": "timeout"}, status_code=status.HTTP_504_GATEWAY_TIMEOUT)
        except DBAPIError as e:
            if _stopped_by_server(e):
                return JSONResponse({"detail": "timeout"}, status_code=status.HTTP_504_GATEWAY_TIMEOUT)
            raise
        return {"report_id": report_id}

    return app
