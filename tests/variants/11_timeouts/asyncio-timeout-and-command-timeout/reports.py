"""Kata 11 - timeouts and cancellation (a learner's solution)."""

import asyncio

from fastapi import FastAPI, HTTPException, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kata_blog.database import async_database_url

QUERY = text("SELECT pg_sleep(:seconds)")
QUERY_CANCELED = "57014"


def make_engine(database_url: str, statement_timeout: float) -> AsyncEngine:
    # asyncpg's own per-statement timeout: it cancels the query on the server and raises TimeoutError
    return create_async_engine(async_database_url(database_url), connect_args={"command_timeout": statement_timeout})


def create_app(engine: AsyncEngine, timeout: float) -> FastAPI:
    app = FastAPI()

    async def query(seconds: float) -> None:
        async with asyncio.timeout(timeout):
            async with engine.connect() as conn:
                await conn.execute(QUERY, {"seconds": seconds})

    async def disconnected(request: Request) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return

    @app.get("/reports/{report_id}")
    async def report(report_id: int, request: Request, seconds: float = 0.1):
        running = asyncio.create_task(query(seconds))
        gone = asyncio.create_task(disconnected(request))
        try:
            await asyncio.wait([running, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (running, gone):
                t.cancel()
            await asyncio.gather(running, gone, return_exceptions=True)
        if running.cancelled():  # the client left: nobody to answer
            return Response(status_code=499)
        try:
            running.result()
        except TimeoutError:  # ours or asyncpg's command_timeout: both are TimeoutError on 3.11
            raise HTTPException(504, "report timed out")
        return {"report_id": report_id}

    return app
