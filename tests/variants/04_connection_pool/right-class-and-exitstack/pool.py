"""Kata 04 - the pool, with a small helper class and contextlib."""

import contextlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import create_async_engine

BUSY = "database busy: no free connection, try again later"


@dataclass
class PoolOptions:
    options: dict

    def kwargs(self) -> dict:
        # only what the caller gave; SQLAlchemy fills in the rest
        return {k: v for k, v in self.options.items() if v is not None}


def make_engine(url, **options: Any):
    return sqlalchemy.create_engine(url, pool_use_lifo=True, **PoolOptions(options).kwargs())


def make_async_engine(url, **options: Any):
    return create_async_engine(url, **PoolOptions(options).kwargs())


def run_query(engine, sql: str) -> Any:
    with contextlib.closing(engine.connect()) as connection:
        return connection.scalar(sqlalchemy.text(sql))


async def run_query_async(engine, sql: str) -> Any:
    async with engine.connect() as connection:
        return await connection.scalar(sqlalchemy.text(sql))


async def run_query_or_503(engine, sql: str) -> tuple[int, Any]:
    try:
        value = await run_query_async(engine, sql)
    except sqlalchemy.exc.TimeoutError:
        return 503, BUSY
    else:
        return 200, value


def warm_up(engine) -> None:
    with contextlib.ExitStack() as stack:
        for _ in range(engine.pool.size()):
            stack.enter_context(engine.connect())


def max_concurrent_queries(workers: int, pool_size: int = 5, max_overflow: int = 10) -> int:
    return min(workers, pool_size + max_overflow)
