"""Kata 04 - connection pool."""

from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

BUSY = "database busy: no free connection, try again later"


def make_engine(url, **options: Any):
    return create_engine(url, **options)


def make_async_engine(url, **options: Any):
    return create_async_engine(url, **options)


def run_query(engine, sql: str) -> Any:
    connection = engine.connect()
    try:
        row = connection.execute(text(sql)).first()
        return row[0] if row is not None else None
    finally:
        connection.close()


async def run_query_async(engine, sql: str) -> Any:
    async with engine.connect() as connection:
        row = (await connection.execute(text(sql))).first()
        return None if row is None else row[0]


async def run_query_or_503(engine, sql: str) -> tuple[int, Any]:
    # Don't even try when every connection is taken: answer 503 right away instead of hanging.
    pool = engine.pool
    if pool.checkedout() >= pool.size() + max(pool.overflow(), 0) and pool.checkedin() == 0:
        return 503, BUSY
    return 200, await run_query_async(engine, sql)


def warm_up(engine) -> None:
    held = []
    for _ in range(engine.pool.size()):
        held.append(engine.connect())
    for connection in held:
        connection.close()


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    limit = pool_size + max_overflow
    return workers if workers < limit else limit
