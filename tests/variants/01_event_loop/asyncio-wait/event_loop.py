"""Kata 01 - the event loop (a learner's version)."""

import asyncio

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_later(latency, done.set_result, None)
    await done
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    for request_id in request_ids:
        task = asyncio.ensure_future(handler(request_id))
        results.append(await task)
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    if not request_ids:
        return []
    tasks = [asyncio.ensure_future(handler(r)) for r in request_ids]
    await asyncio.wait(tasks)
    return [t.result() for t in tasks]
