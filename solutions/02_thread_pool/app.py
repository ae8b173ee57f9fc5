"""Kata 02 - the thread pool. Read README.md in this folder first.

Write `create_app` below; `pytest katas/02_thread_pool` tells you, rule by rule, what is still
wrong. Only this file is yours to edit: the specs are in test_thread_pool.py.
"""

import asyncio
import time
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

REPORT_SECONDS = 0.1  # how long one legacy_report call blocks its thread
CACHE_SECONDS = 0.05  # how long one cached_report call waits (without blocking)


def legacy_report(report_id: int) -> dict:
    """A call into a synchronous library (a sync database driver, `requests`): it blocks.

    Given: do not change it. The specs replace it with a stand-in that records where it ran.
    """
    time.sleep(REPORT_SECONDS)
    return {"report": report_id, "source": "legacy"}


async def cached_report(report_id: int) -> dict:
    """A call into an asynchronous library (an async cache client): it awaits, it never blocks.

    Given: do not change it. The specs replace it with a stand-in that records where it ran.
    """
    await asyncio.sleep(CACHE_SECONDS)
    return {"report": report_id, "source": "cache"}


def create_app(thread_limit: int | None = None) -> FastAPI:
    """A new FastAPI app with three endpoints (see README.md, "Your task").

    GET /reports/{report_id}  returns legacy_report(report_id); it must not stall the loop.
    GET /cached/{report_id}   returns await cached_report(report_id), on the event loop.
    GET /thread-limit         returns {"limit": <the thread limit of the running server>}.

    With `thread_limit` given, the server runs at most that many def requests at once.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if thread_limit is not None:
            # The limiter belongs to the running loop: set it here, on the loop that serves.
            anyio.to_thread.current_default_thread_limiter().total_tokens = thread_limit
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/reports/{report_id}")
    def report(report_id: int) -> dict:
        # A def endpoint: FastAPI runs it on a worker thread, so the blocking call stalls only that.
        return legacy_report(report_id)

    @app.get("/cached/{report_id}")
    async def cached(report_id: int) -> dict:
        # async def runs on the loop's thread: the await lets the loop serve others meanwhile.
        return await cached_report(report_id)

    @app.get("/thread-limit")
    async def thread_limit_now() -> dict:
        # async def: read on the loop's thread, where the running loop's limiter can be found.
        return {"limit": anyio.to_thread.current_default_thread_limiter().total_tokens}

    return app
