"""Kata 04 - the pool, with SQLAlchemy's defaults written out and overridden by the caller."""

from typing import Any

from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine
from sqlalchemy.pool import QueuePool

BUSY = "database busy: no free connection, try again later"

DEFAULTS = {"pool_size": 5, "max_overflow": 10, "pool_timeout": 30, "pool_recycle": -1}


def make_engine(url, **options: Any):
    settings = {**DEFAULTS, **options}
    return sa_create_engine(url, poolclass=QueuePool, pool_pre_ping=True, **settings)


def make_async_engine(url, **options: Any):
    settings = dict(DEFAULTS)
    settings.update(options)
    return sa_create_async_engine(url, **settings)


def run_query(engine, sql: str) -> Any:
    conn = engine.connect()
    try:
        rows = conn.execute(text(sql)).fetchall()
    finally:
        conn.close()
    return rows[0][0] if rows else None


async def run_query_async(engine, sql: str) -> Any:
    conn = await engine.connect()
    try:
        result = await conn.execute(text(sql))
        row = result.fetchone()
    finally:
        await conn.close()
    return None if row is None else row[0]


async def run_query_or_503(engine, sql: str):
    try:
        return (200, await run_query_async(engine, sql))
    except exc.TimeoutError:
        return (503, BUSY)


def warm_up(engine) -> None:
    taken = []
    while len(taken) < engine.pool.size():
        taken.append(engine.connect())
    while taken:
        taken.pop().close()


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    return sorted([workers, pool_size + max_overflow])[0]
