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
        # TODO: when thread_limit is given, set the running server's thread limit to it (TP3).
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/reports/{report_id}")
    async def report(report_id: int) -> dict:
        # TODO: this answers correctly, but the blocking call runs on the event loop's thread (TP1).
        return legacy_report(report_id)

    @app.get("/cached/{report_id}")
    async def cached(report_id: int) -> dict:
        # TODO: return what cached_report(report_id) returns, waiting on the event loop (TP4).
        raise NotImplementedError("GET /cached/{report_id}")

    @app.get("/thread-limit")
    async def thread_limit_now() -> dict:
        # TODO: return {"limit": ...} with the running server's thread limit (TP3).
        raise NotImplementedError("GET /thread-limit")

    return app
