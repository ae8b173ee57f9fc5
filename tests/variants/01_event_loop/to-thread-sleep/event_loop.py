"""Kata 01 - the event loop (a learner's version)."""

import asyncio
import time

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    # time.sleep blocks, so run it in a thread and await that
    await asyncio.to_thread(time.sleep, latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    for request_id in request_ids:
        result = await handler(request_id)
        results.append(result)
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    tasks = [handler(request_id) for request_id in request_ids]
    return await asyncio.gather(*tasks)
