"""Kata 01 - the event loop. Read README.md in this folder first.

Write the three functions below; `pytest katas/01_event_loop` tells you, rule by rule, what is
still wrong. Only this file is yours to edit: the specs are in test_event_loop.py.
"""

import asyncio
import time

LATENCY = 0.1  # seconds one database query takes in this kata


async def query_database(request_id: int, latency: float = LATENCY) -> str:
    """Wait `latency` seconds for the (pretend) database, then return f"row {request_id}".

    While it waits, other coroutines on the event loop must keep running (rule EL3).
    """
    # TODO: this waits, but it holds the event loop's only thread while it does.
    time.sleep(latency)
    return f"row {request_id}"


async def serve_one_at_a_time(handler, request_ids: list[int]) -> list:
    """A server with a single worker: handle each request only after the previous one finished.

    `handler` is an async function taking a request id. Return its results in request order.
    This is the slow baseline of rule EL1: the k-th request waits for the k-1 before it.
    """
    # TODO: handle the requests one after another.
    raise NotImplementedError("serve_one_at_a_time")


async def serve_concurrently(handler, request_ids: list[int]) -> list:
    """An event-loop server: handle every request at once, all on this one event loop.

    Return the handler's results in request order, whatever order they finish in (rule EL2).
    """
    # TODO: start every request, then wait for all of them together.
    raise NotImplementedError("serve_concurrently")
