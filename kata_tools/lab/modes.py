"""The lab's modes: six ways one server can serve N requests that each wait T on the database.

Each mode says how the server runs a request (a `def` endpoint on worker threads, or an
`async def` one on the event loop), which engine and pool it uses, and how many queries the
rules let it run at once (its capacity). The rules then predict the total: ceil(N / capacity) x T.
The server's own work per request (parsing, routing, the driver, the reply) comes on top: the
lab measures it per mode with T = 0 (results.ModeResult.server_cost) and shows it beside the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kata_tools.i18n import tool

MSG = tool("lab")

DEFAULT_POOL = 15  # SQLAlchemy's pool_size 5 + max_overflow 10 (CP2, CP3)
DEFAULT_THREADS = 40  # anyio's default thread limiter: 40 worker threads per loop (TP2)


@dataclass(frozen=True)
class Settings:
    """What one lab run measures: N clients at once, each request waiting T on the database."""

    clients: int = 100
    latency: float = 0.1
    pool: int | None = None  # the pool of `threads` and `async-pool`; None: as large as N
    threads: int = DEFAULT_THREADS

    @property
    def pool_size(self) -> int:
        return self.pool if self.pool is not None else self.clients


@dataclass(frozen=True)
class Mode:
    name: str
    rule: str  # the rule of katas/rules.toml this mode shows (in the table, the help, the SVG)
    endpoint: str  # "def" (worker threads) or "async def" (the event loop)
    driver: str  # "psycopg2" (sync, blocking) or "asyncpg"
    also: tuple[str, ...] = ()  # other rules its timeline shows; the READMEs' pictures follow them

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule this mode's timeline shows: a kata teaching one of them gets its panel."""
        return (self.rule, *self.also)

    @property
    def blurb(self) -> str:
        """One line, in the current language: what the server does."""
        return MSG(f"blurb-{self.name}")

    def how(self, s: Settings) -> str:
        """How the server runs, with the figures of this run, in the current language."""
        return MSG(f"how-{self.name}", threads=s.threads, pool=s.pool_size)

    def capacity(self, s: Settings) -> int:
        """How many queries the rules let run at once in this mode."""
        return {
            "one-at-a-time": 1,  # EL1: one worker
            "threads": min(s.threads, s.pool_size),  # TP2 and CP7: the smaller cap wins
            "async-default-pool": DEFAULT_POOL,  # CP3 / CP7: 5 + 10 connections
            "async-pool": s.pool_size,  # EL2: the loop itself has no cap, the pool has
            "async-blocking": 1,  # EL3: the blocked loop runs one request at a time
            "one-session": 1,  # SS1: one session, one connection, one statement at a time
        }[self.name]

    def predicted(self, s: Settings) -> float:
        return math.ceil(s.clients / self.capacity(s)) * s.latency

    def formula(self, s: Settings) -> str:
        cap = self.capacity(s)
        if cap == 1:
            return f"{s.clients} x {s.latency:g} s"
        return f"ceil({s.clients}/{cap}) x {s.latency:g} s"

    def bar(self, s: Settings) -> Bar | None:
        """The bar this mode's ratio (measured / (rule + server cost)) must meet, if any.

        The same figures are the course's quality bars against the rule alone, on a quiet
        machine with the fast loop (benchmarks/lab.py records both ratios).
        """
        if self.name == "async-pool" and s.pool_size >= s.clients:
            return Bar("<=", 1.2)
        if self.name == "threads":
            return Bar("<=", 1.15)
        if self.name == "async-blocking":
            return Bar(">=", 0.9)
        return None


@dataclass(frozen=True)
class Bar:
    op: str  # "<=" or ">="
    limit: float

    def met(self, ratio: float | None) -> bool:
        if ratio is None:
            return False
        return ratio <= self.limit if self.op == "<=" else ratio >= self.limit

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


MODES = {
    m.name: m
    for m in (
        # TP3: the lab sets the thread limit to 1 at run time, and 40 threads become one worker
        Mode("one-at-a-time", "EL1", "def", "psycopg2", also=("TP3",)),
        Mode("threads", "TP2", "def", "psycopg2"),
        # CP3: 5 + 10 connections at once, no more: waves of 15
        Mode("async-default-pool", "CP7", "async def", "asyncpg", also=("CP3",)),
        # CP7: the pool, not the loop, is the cap; sized to N, every query runs at once
        Mode("async-pool", "EL2", "async def", "asyncpg", also=("CP7",)),
        Mode("async-blocking", "EL3", "async def", "psycopg2"),
        Mode("one-session", "SS1", "async def", "asyncpg"),
    )
}
