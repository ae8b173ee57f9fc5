"""Kata 13 - sizing a deployment. Read README.md in this folder first.

A deployment runs several worker processes (`uvicorn --workers N`, gunicorn workers, replicas),
and each process builds its own engine, with its own pool. Only this file is yours to edit: the
specs are in test_sizing.py. `pytest katas/13_sizing_a_deployment` tells you, rule by rule, what
is still wrong.

Both functions return the keyword arguments of create_engine / create_async_engine that size
the pool of ONE worker process: {"pool_size": ..., "max_overflow": ...}.
"""

import math


def pool_settings(max_connections: int, reserve: int, workers: int) -> dict:
    """The largest pool each of `workers` processes may have: all of them together must stay
    within max_connections minus `reserve` (the connections others need). Use as much of that
    budget as you can. ValueError when it cannot give each worker even one connection."""
    # TODO: this sizes one process as if it were the only one, and ignores the reserve.
    return {"pool_size": max_connections, "max_overflow": 0}


def pool_for_load(
    rate: float, hold_seconds: float, workers: int, max_connections: int, reserve: int
) -> dict:
    """The pool each of `workers` processes needs to serve `rate` requests per second, each
    holding a connection for `hold_seconds`. ValueError (say why) when it cannot fit the budget."""
    # TODO: how many connections are in use at once for this load, and how many in each worker?
    #       And what if that does not fit?
    return {"pool_size": 0, "max_overflow": -1}
