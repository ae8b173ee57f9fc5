"""Kata 04 - my solution."""

import asyncio
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY = "database busy: no free connection, try again later"


def make_engine(url, **options: Any) -> Engine:
    return create_engine(url, **options)


def make_async_engine(url, **options: Any) -> AsyncEngine:
    return create_async_engine(url, **options)


def run_query(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


async def run_query_async(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql))
        return result.scalar()


async def run_query_or_503(engine: AsyncEngine, sql: str) -> tuple[int, Any]:
    # give up after the pool's timeout, like the pool would
    try:
        value = await asyncio.wait_for(run_query_async(engine, sql), timeout=engine.pool.timeout())
    except asyncio.TimeoutError:
        return 503, BUSY
    return 200, value


def warm_up(engine: Engine) -> None:
    conns = [engine.connect() for _ in range(engine.pool.size())]
    for c in conns:
        c.close()


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    return min(workers, pool_size + max_overflow)
