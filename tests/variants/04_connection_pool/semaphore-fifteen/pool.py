"""Kata 04 - connection pool. I cap the coroutines myself so nobody waits on the pool."""

import asyncio
from typing import Any

import sqlalchemy.exc
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY = "database busy: no free connection, try again later"

_limits: dict = {}


def make_engine(url, **options: Any):
    return create_engine(url, **options)


def make_async_engine(url, **options: Any) -> AsyncEngine:
    return create_async_engine(url, **options)


def run_query(engine, sql: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def _limit(engine: AsyncEngine) -> asyncio.Semaphore:
    # pool_size + max_overflow (max_overflow is 10)
    if engine not in _limits:
        _limits[engine] = asyncio.Semaphore(engine.pool.size() + 10)
    return _limits[engine]


async def run_query_async(engine: AsyncEngine, sql: str) -> Any:
    async with _limit(engine), engine.connect() as connection:
        return (await connection.execute(text(sql))).scalar()


async def run_query_or_503(engine: AsyncEngine, sql: str) -> tuple[int, Any]:
    try:
        return 200, await run_query_async(engine, sql)
    except sqlalchemy.exc.TimeoutError:
        return 503, BUSY


def warm_up(engine) -> None:
    connections = [engine.connect() for _ in range(engine.pool.size())]
    for connection in connections:
        connection.close()


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    return min(workers, pool_size + max_overflow)
