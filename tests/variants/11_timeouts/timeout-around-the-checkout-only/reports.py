"""Kata 11 - timeouts and cancellation (a learner's solution)."""

import asyncio

from fastapi import FastAPI, status
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


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, seconds: float = 0.1):
        try:
            conn = await asyncio.wait_for(engine.connect(), timeout)
            try:
                await conn.execute(QUERY, {"seconds": seconds})
            finally:
                await conn.close()
        except asyncio.TimeoutError:
            return JSONResponse({"detail": "timeout"}, status_code=status.HTTP_504_GATEWAY_TIMEOUT)
        except DBAPIError as e:
            if _stopped_by_server(e):
                return JSONResponse({"detail": "timeout"}, status_code=status.HTTP_504_GATEWAY_TIMEOUT)
            raise
        return {"report_id": report_id}

    return app
