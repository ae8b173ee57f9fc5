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
    return create_async_engine(
        async_database_url(database_url),
        connect_args={"server_settings": {"statement_timeout": str(int(statement_timeout * 1000))}},
    )


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    app = FastAPI()

    @app.get("/reports/{report_id}")
    async def report(report_id: int, seconds: float = 0.1):
        conn = await engine.connect()
        try:
            await asyncio.wait_for(conn.execute(QUERY, {"seconds": seconds}), timeout)
        except asyncio.TimeoutError:
            raise HTTPException(status_code=504, detail="timeout")
        except DBAPIError as e:
            if e.orig.sqlstate == QUERY_CANCELED:
                raise HTTPException(status_code=504, detail="timeout")
            raise
        await conn.close()
        return {"report_id": report_id}

    return app
