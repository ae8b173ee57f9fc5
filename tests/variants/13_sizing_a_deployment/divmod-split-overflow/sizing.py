import math


def pool_settings(max_connections, reserve, workers):
    available = max_connections - reserve
    share, _leftover = divmod(available, workers)
    if share == 0:
        raise ValueError(f"only {available} connections for {workers} workers")
    # keep two thirds open, let the rest overflow
    keep = max(1, share - share // 3)
    return {"pool_size": keep, "max_overflow": share - keep}


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve):
    concurrent = math.ceil(rate * hold_seconds)
    share = math.ceil(concurrent / workers)
    available = max_connections - reserve
    if share * workers > available:
        raise ValueError(
            f"need {share} x {workers} = {share * workers} connections, have {available}; "
            "use fewer workers, a bigger database or pgbouncer"
        )
    keep = max(1, share - share // 3)
    return {"pool_size": keep, "max_overflow": share - keep}
