"""Kata 01 - the event loop (a learner's version)."""

import asyncio

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    await asyncio.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    for request_id in request_ids:
        results.append(await handler(request_id))
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    results = []
    for start in range(0, len(request_ids), 5):
        batch = request_ids[start : start + 5]
        results.extend(await asyncio.gather(*(handler(r) for r in batch)))
    return results
