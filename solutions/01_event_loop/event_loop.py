"""Kata 01 - the event loop. Read README.md in this folder first.

Write the three functions below; `pytest katas/01_event_loop` tells you, rule by rule, what is
still wrong. Only this file is yours to edit: the specs are in test_event_loop.py.
"""

import asyncio

LATENCY = 0.1  # seconds one database query takes in this kata


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    """Wait `latency` seconds for the (pretend) database, then return f"row {request_id}".

    While it waits, other coroutines on the event loop must keep running (rule EL3).
    """
    # await hands the loop back: other coroutines run while this one waits.
    await asyncio.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    """A server with a single worker: handle each request only after the previous one finished.

    `handler` is an async function taking a request id. Return its results in request order.
    This is the slow baseline of rule EL1: the k-th request waits for the k-1 before it.
    """
    results = []
    for request_id in request_ids:
        # Awaiting inside the loop: request k+1 does not start until request k is done.
        results.append(await handler(request_id))
    return results


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    """An event-loop server: handle every request at once, all on this one event loop.

    Return the handler's results in request order, whatever order they finish in (rule EL2).
    """
    # gather starts every coroutine before waiting on any, and keeps the results in call order.
    return await asyncio.gather(*(handler(request_id) for request_id in request_ids))
