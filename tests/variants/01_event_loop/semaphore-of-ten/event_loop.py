"""Kata 01 - the event loop (a learner's version)."""

import asyncio

LATENCY = 0.1
MAX_AT_ONCE = 10  # don't overload the database


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    await asyncio.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    for request_id in request_ids:
        results.append(await handler(request_id))
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    semaphore = asyncio.Semaphore(MAX_AT_ONCE)

    async def limited(request_id):
        async with semaphore:
            return await handler(request_id)

    return await asyncio.gather(*(limited(r) for r in request_ids))
