import math


def pool_settings(max_connections, reserve, workers):
    # keep 20% headroom on top of the reserve, to be safe
    usable = int((max_connections - reserve) * 0.8)
    each = usable // workers
    if each < 1:
        raise ValueError("not enough connections for the workers")
    return {"pool_size": each, "max_overflow": 0}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    each = math.ceil(math.ceil(rate * hold_seconds) / workers)
    if each * workers > max_connections - reserve:
        raise ValueError("the load does not fit the database: fewer workers or pgbouncer")
    return {"pool_size": each, "max_overflow": 0}
