"""Kata 01 - the event loop (a learner's version)."""

from asyncio import create_task, sleep

LATENCY = 0.1


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    await sleep(latency)
    return "row %d" % request_id  # noqa: UP031 (a learner's style)


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    results = []
    i = 0
    while i < len(request_ids):
        results.append(await handler(request_ids[i]))
        i += 1
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    tasks = [create_task(handler(r)) for r in request_ids]  # all started now
    return [await t for t in tasks]
