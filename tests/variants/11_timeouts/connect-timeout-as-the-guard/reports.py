"""Kata 11 - timeouts and cancellation (a learner's solution)."""

import asyncio

from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kata_blog.database import async_database_url

QUERY = text("SELECT pg_sleep(:seconds)")
QUERY_CANCELED = "57014"


def make_engine(database_url: str, statement_timeout: float) -> AsyncEngine:
    # asyncpg's own per-statement timeout: it cancels the query on the server and raises TimeoutError
    return create_async_engine(async_database_url(database_url), connect_args={"timeout": statement_timeout})


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, seconds: float = 0.1):
        try:
            async with asyncio.timeout(timeout):
                async with engine.connect() as conn:
                    await conn.execute(QUERY, {"seconds": seconds})
        except TimeoutError:  # ours or asyncpg's command_timeout: both are TimeoutError on 3.11
            raise HTTPException(504, "report timed out")
        return {"report_id": report_id}

    return app
