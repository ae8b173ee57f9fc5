import math


def pool_settings(max_connections, reserve, workers):
    steady = (max_connections - reserve) // workers
    if steady < 1:
        raise ValueError("not enough connections for the workers")
    # the steady share stays open; bursts get half as much again as overflow
    return {"pool_size": steady, "max_overflow": steady // 2}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    each = math.ceil(math.ceil(rate * hold_seconds) / workers)
    if each * workers > max_connections - reserve:
        raise ValueError("the load does not fit the database: fewer workers or pgbouncer")
    return {"pool_size": each, "max_overflow": 0}
