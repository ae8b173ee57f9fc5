import math


def pool_settings(max_connections, reserve, workers):
    limit = (max_connections - reserve) // workers
    if limit < 1:
        raise ValueError("too many workers for this database")
    # no idle connections kept open: open them only on demand, up to the limit
    return {"pool_size": 0, "max_overflow": limit}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    each = math.ceil(math.ceil(rate * hold_seconds) / workers)
    if each * workers > max_connections - reserve:
        raise ValueError("the load does not fit: fewer workers or pgbouncer")
    return {"pool_size": each, "max_overflow": 0}
