"""Who is waiting for a connection or a thread right now, read from the libraries' own state.

A spec that counts queries at once must know when the count is final. Waiting for it to stop
growing costs a fixed pause on every run; these say instead that every worker not counted is
blocked where it cannot move until something comes back: in SQLAlchemy's pool queue (a thread
or a coroutine) or in anyio's thread limiter. Blocked there, a worker cannot reach the database,
whatever the learner's code around the call looks like; anything else falls back to the pause.
"""

from __future__ import annotations

import sys
import threading

import sqlalchemy.util.queue

_THREADING = threading.__file__
_POOL_QUEUE = sqlalchemy.util.queue.__file__


def threads_blocked_in_a_pool(threads=None) -> int:
    """How many threads (of `threads`, or of all) wait, blocked, in a SQLAlchemy pool queue.

    Read from each thread's stack: a Condition.wait called from the queue's get(). A get() that
    does not block (the pool may still open a connection) is not counted.
    """
    frames = sys._current_frames()
    idents = frames if threads is None else [t.ident for t in threads]
    blocked = 0
    for ident in idents:
        frame, waiting = frames.get(ident), False
        while frame is not None:
            code = frame.f_code
            if code.co_filename == _THREADING and code.co_name == "wait":
                waiting = True
            elif waiting and code.co_filename == _POOL_QUEUE and code.co_name == "get":
                blocked += 1
                break
            frame = frame.f_back
    return blocked


def coroutines_blocked_in_the_pool(engine) -> int | None:
    """How many coroutines wait for a connection in an async engine's pool: the waiting getters
    of the asyncio.Queue inside it. None when the pool has no such queue (a pool of another
    kind, or one that has never had to make a coroutine wait)."""
    pool = getattr(getattr(engine, "sync_engine", engine), "pool", None)
    queue = getattr(getattr(pool, "_pool", None), "__dict__", {}).get("_queue")  # made on first use
    getters = getattr(queue, "_getters", None)
    if getters is None:  # not the queue this knows: the caller waits instead
        return None
    return sum(not getter.done() for getter in list(getters))


def requests_waiting_for_a_thread(limiter) -> int:
    """Tasks waiting for a token of an anyio CapacityLimiter (FastAPI's `def` endpoints)."""
    return limiter.statistics().tasks_waiting
