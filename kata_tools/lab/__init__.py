"""The concurrency lab: the notes' timelines, measured on a real server and a real database.

    python -m kata_tools.lab [-n 100] [-t 0.1] [--pool-size P] [--threads 40] [--modes ...]

N clients send their requests at once to a FastAPI app served by uvicorn on 127.0.0.1; each
request waits T on PostgreSQL (SELECT pg_sleep). Six modes: one at a time, def endpoints on
the thread pool, async def with the default pool, async def with a pool as large as N, async def
with a blocking call inside, and async def with one AsyncSession shared by every request. For each the lab prints the measured total and p50/p95
latency beside the figure the rules predict, and draws every request's timeline in the terminal
and in an SVG file. `main` is what `kata lab` runs; nothing heavy is imported until it is called.
"""

from __future__ import annotations


def main(argv: list[str] | None = None, prog: str = "kata lab") -> int:
    """Run the lab with command-line arguments `argv`; return the exit code (2: a bad option)."""
    from kata_tools.lab.run import main as run_main

    return run_main(argv, prog)
