import math


def pool_settings(max_connections, reserve, workers):
    each = (max_connections - reserve) // workers
    if each < 1:
        raise ValueError("budget too small for the workers")
    return {"pool_size": each, "max_overflow": 0}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    wanted = math.ceil(math.ceil(rate * hold_seconds) / workers)
    # never more than the database allows: give what fits, requests will wait a little
    allowed = pool_settings(max_connections, reserve, workers)["pool_size"]
    return {"pool_size": min(wanted, allowed), "max_overflow": 0}
