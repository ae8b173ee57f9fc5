import math


def pool_settings(max_connections, reserve, workers):
    budget = max_connections - reserve
    if budget // workers < 1:
        raise ValueError("budget too small for the workers")
    return {"pool_size": budget // workers, "max_overflow": 0}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    connections = round(rate * hold_seconds)  # Little's law, to the nearest connection
    each = math.ceil(connections / workers)
    if each * workers > max_connections - reserve:
        raise ValueError(f"{connections} connections do not fit: use pgbouncer")
    return {"pool_size": each, "max_overflow": 0}
