"""Kata 01 - the event loop (a learner's version)."""

import asyncio

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    await asyncio.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    # one task per request, then collect them one by one
    tasks = [asyncio.create_task(handler(r)) for r in request_ids]
    results = []
    for task in tasks:
        results.append(await task)
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    return await asyncio.gather(*(handler(r) for r in request_ids))
