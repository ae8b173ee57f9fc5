"""Kata 01 - the event loop (a learner's version)."""

import asyncio

import anyio

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    await anyio.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    out = []
    for rid in request_ids:
        out += [await handler(rid)]
    return out


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    results = [None] * len(request_ids)

    async def run(i, rid):
        results[i] = await handler(rid)

    await asyncio.gather(*(run(i, rid) for i, rid in enumerate(request_ids)))
    return results
