"""Kata 02 - the thread pool (a learner's version)."""

import asyncio
import time
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI

REPORT_SECONDS = 0.1
CACHE_SECONDS = 0.05


def legacy_report(report_id: int) -> dict:
    time.sleep(REPORT_SECONDS)
    return {"report": report_id, "source": "legacy"}


async def cached_report(report_id: int) -> dict:
    await asyncio.sleep(CACHE_SECONDS)
    return {"report": report_id, "source": "cache"}


def create_app(thread_limit: int | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if thread_limit is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = thread_limit
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/reports/{report_id}")
    def report(report_id: int) -> dict:
        return legacy_report(report_id)

    @app.get("/cached/{report_id}")
    def cached(report_id: int) -> dict:
        return anyio.run(cached_report, report_id)

    @app.get("/thread-limit")
    async def thread_limit_now() -> dict:
        return {"limit": anyio.to_thread.current_default_thread_limiter().total_tokens}

    return app
