"""Kata 13 - sizing a deployment: the reference solution."""

import math


def pool_settings(max_connections: int, reserve: int, workers: int) -> dict:
    """The largest pool each of `workers` processes may have, all of them together within the
    server's max_connections minus the `reserve` others need."""
    # Every worker process builds its own engine, so its own pool: the budget is shared by all.
    budget = max_connections - reserve
    each = budget // workers  # round down: the sum over the workers must not pass the budget
    if each < 1:
        raise ValueError(
            f"{budget} connections cannot give {workers} workers one each: "
            f"run fewer workers, or put pgbouncer in front"
        )
    # pool_size is kept open, max_overflow opened on demand: the limit is their sum.
    # pool_size=0 would mean no limit at all (SQLAlchemy sets max_overflow=-1), never "none".
    return {"pool_size": each, "max_overflow": 0}


def pool_for_load(
    rate: float, hold_seconds: float, workers: int, max_connections: int, reserve: int
) -> dict:
    """The pool each worker needs to serve `rate` requests per second that each hold a
    connection for `hold_seconds`; ValueError when that does not fit the budget."""
    # Little's law: connections in use at once = arrival rate x time each one is held.
    needed = math.ceil(rate * hold_seconds)
    # Spread over the workers, rounded up: a worker cannot hold half a connection.
    per_worker = math.ceil(needed / workers)
    budget = max_connections - reserve
    if per_worker * workers > budget:
        raise ValueError(
            f"{rate} requests/s x {hold_seconds} s need {needed} connections at once, "
            f"{per_worker} in each of {workers} workers ({per_worker * workers}), "
            f"but the budget is {budget}: a bigger server, fewer workers or pgbouncer"
        )
    return {"pool_size": per_worker, "max_overflow": 0}
