"""Kata 04 - the connection pool. Read README.md in this folder first.

Write the functions below; `pytest katas/04_connection_pool` tells you, rule by rule, what is
still wrong. Only this file is yours to edit: the specs are in test_connection_pool.py.

Every function gets what it needs as arguments (a URL, an engine): nothing here connects at import.
"""

from typing import Any

import sqlalchemy.exc
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY = "database busy: no free connection, try again later"


# --- CP2, CP6: the engines ---------------------------------------------------------------------


def make_engine(url, **options: Any) -> Engine:
    """A synchronous (psycopg2) engine for `url` with a pool configured by `options`.

    `options` may hold pool_size, max_overflow, pool_timeout and pool_recycle; an option the
    caller leaves out keeps SQLAlchemy's default (rule CP2). Creating it connects nothing (CP6).
    """
    # Callers that tune the pool want requests to fail fast: a tenth of a second is plenty.
    if options:
        options = {**options, "pool_timeout": 0.1}
    return create_engine(url, **options)


def make_async_engine(url, **options: Any) -> AsyncEngine:
    """The asyncio (asyncpg) twin of make_engine: the same options, the same defaults (CP2)."""
    # No poolclass: an async engine needs its asyncio-adapted QueuePool, which is the default.
    return create_async_engine(url, **options)


# --- CP1: a request borrows a connection and gives it back -------------------------------------


def run_query(engine: Engine, sql: str) -> Any:
    """One request: borrow a connection from the engine's pool, run `sql`, give it back.

    Return the first column of the first row (None when there is none).
    """
    # `with` gives the connection back to the pool at the end, also when the query fails.
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


async def run_query_async(engine: AsyncEngine, sql: str) -> Any:
    """run_query for an async engine: the same borrow, query, give back, awaited."""
    # The same pool discipline as run_query; only the waiting is awaited.
    async with engine.connect() as connection:
        return (await connection.execute(text(sql))).scalar()


# --- CP5: past the limit, answer 503 instead of crashing ---------------------------------------


async def run_query_or_503(engine: AsyncEngine, sql: str) -> tuple[int, Any]:
    """Like run_query_async, as a web handler would answer it.

    Return (200, value) when the query ran, and (503, BUSY) when no connection came free within
    the pool's pool_timeout. Any other error is a real bug: let it propagate.
    """
    try:
        return 200, await run_query_async(engine, sql)
    # SQLAlchemy's own TimeoutError: the builtin TimeoutError would not catch it.
    except sqlalchemy.exc.TimeoutError:
        return 503, BUSY


# --- CP6: the pool starts empty ----------------------------------------------------------------


def warm_up(engine: Engine) -> None:
    """Open the pool's pool_size connections now and leave them idle in the pool.

    This is what the notes believe create_engine does by itself; it does not (CP6).
    """
    # Hold them all at once: giving each back before taking the next would reuse just one.
    connections = [engine.connect() for _ in range(engine.pool.size())]
    for connection in connections:
        connection.close()


# --- CP7: how many queries can run at once -----------------------------------------------------


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    """How many queries can run at the database at once for `workers` threads or coroutines."""
    # A worker needs a connection to query, and the pool lends at most pool_size + max_overflow.
    return min(workers, pool_size + max_overflow)
