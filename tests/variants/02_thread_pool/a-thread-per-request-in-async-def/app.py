"""Kata 02 - the thread pool (a learner's version)."""

import asyncio
import queue
import threading
import time
from contextlib import asynccontextmanager

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
    async def report(report_id: int) -> dict:
        answers = queue.Queue()
        worker = threading.Thread(target=lambda: answers.put(legacy_report(report_id)))
        worker.start()
        while answers.empty():
            await asyncio.sleep(0.01)
        return answers.get()

    @app.get("/cached/{report_id}")
    async def cached(report_id: int) -> dict:
        return await cached_report(report_id)

    @app.get("/thread-limit")
    async def thread_limit_now() -> dict:
        return {"limit": anyio.to_thread.current_default_thread_limiter().total_tokens}

    return app
