from dataclasses import asdict, dataclass
from decimal import Decimal


@dataclass
class PoolConfig:
    pool_size: int
    max_overflow: int = 0


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pool_settings(max_connections: int, reserve: int, workers: int) -> dict:
    budget = max_connections - reserve
    if budget < workers:
        raise ValueError("not enough connections: every worker needs at least one")
    return asdict(PoolConfig(pool_size=budget // workers))


def pool_for_load(rate, hold_seconds, workers, max_connections, reserve) -> dict:
    in_use = Decimal(str(rate)) * Decimal(str(hold_seconds))  # Little's law
    needed = int(in_use.to_integral_value(rounding="ROUND_CEILING"))
    per_process = _ceil_div(needed, workers)
    if per_process * workers > max_connections - reserve:
        raise ValueError(
            f"{needed} connections at once do not fit in {max_connections - reserve}: "
            "scale the server, run fewer workers or add pgbouncer"
        )
    return asdict(PoolConfig(pool_size=per_process))
