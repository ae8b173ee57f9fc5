"""Kata 02 - the thread pool (a learner's version)."""

import asyncio
import time
from contextlib import asynccontextmanager

import anyio.to_thread
from anyio.to_thread import current_default_thread_limiter
from fastapi import APIRouter, Depends, FastAPI

REPORT_SECONDS = 0.1
CACHE_SECONDS = 0.05


def legacy_report(report_id: int) -> dict:
    time.sleep(REPORT_SECONDS)
    return {"report": report_id, "source": "legacy"}


async def cached_report(report_id: int) -> dict:
    await asyncio.sleep(CACHE_SECONDS)
    return {"report": report_id, "source": "cache"}


def load_report(report_id: int) -> dict:
    # a def dependency: FastAPI runs it in the thread pool too
    return legacy_report(report_id)


router = APIRouter()


@router.get("/reports/{report_id}")
async def report(data: dict = Depends(load_report)) -> dict:
    return data


@router.get("/cached/{report_id}")
async def cached(report_id: int):
    data = await cached_report(report_id)
    return data


@router.get("/thread-limit")
async def thread_limit_now():
    return {"limit": current_default_thread_limiter().total_tokens}


def create_app(thread_limit: int | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        limiter = current_default_thread_limiter()
        limiter.total_tokens = thread_limit or limiter.total_tokens
        yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(router)
    return app
