from math import ceil


def pool_settings(max_connections, reserve, workers):
    per_worker = (max_connections - reserve) // workers
    if per_worker <= 0:
        raise ValueError("the budget cannot give each worker a connection")
    return {"pool_size": 1, "max_overflow": per_worker - 1}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    needed_per_worker = ceil(ceil(rate * hold_seconds) / workers)
    try:
        largest = pool_settings(max_connections, reserve, workers)
    except ValueError:
        largest = {"pool_size": 0, "max_overflow": 0}
    if needed_per_worker > largest["pool_size"] + largest["max_overflow"]:
        raise ValueError(
            f"each worker needs {needed_per_worker} connections, the budget allows "
            f"{largest['pool_size'] + largest['max_overflow']}: add pgbouncer or reduce workers"
        )
    return {"pool_size": needed_per_worker, "max_overflow": 0}
