"""Kata 04 - the connection pool, written with engine.begin() and an aliased exception."""

from sqlalchemy import create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine

BUSY = "database busy: no free connection, try again later"


def make_engine(url, **options):
    return create_engine(url, **options)


def make_async_engine(url, **options):
    return create_async_engine(url, **options)


def run_query(engine, sql):
    # begin() borrows a connection, commits at the end and gives the connection back
    with engine.begin() as conn:
        result = conn.execute(text(sql))
        return result.scalar()


async def run_query_async(engine, sql):
    async with engine.begin() as conn:
        result = await conn.execute(text(sql))
        return result.scalar()


async def run_query_or_503(engine, sql):
    try:
        value = await run_query_async(engine, sql)
    except PoolTimeout:
        return 503, BUSY
    return 200, value


def warm_up(engine):
    raw = [engine.raw_connection() for _ in range(engine.pool.size())]
    for connection in raw:
        connection.close()  # back to the pool, still open


def max_concurrent_queries(workers, pool_size=5, max_overflow=10):
    return min(workers, pool_size + max_overflow)
