"""Kata 01 - the event loop (a learner's version)."""

import asyncio
from time import sleep

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sleep, latency)
    return "row " + str(request_id)


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    return [await handler(i) for i in request_ids]


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    return list(await asyncio.gather(*map(handler, request_ids)))
