"""Kata 01 - the event loop (a learner's version)."""

import asyncio
from time import sleep

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    sleep(latency)  # wait for the database
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    for request_id in request_ids:
        results.append(await handler(request_id))
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    return await asyncio.gather(*[handler(r) for r in request_ids])
