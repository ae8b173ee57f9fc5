"""Who is waiting for a connection or a thread right now, read from the libraries' own state.

A spec that counts queries at once must know when the count is final. Waiting for it to stop
growing costs a fixed pause on every run; these say instead that every worker not counted is
blocked where it cannot move until something comes back: in SQLAlchemy's pool queue (a thread
or a coroutine) or in anyio's thread limiter. Blocked there, a worker cannot reach the database,
whatever the learner's code around the call looks like; anything else falls back to the pause.
And whether anything but I/O can run on an event loop before a deadline (nothing_due_but_io), and
whether every thread only waits for an answer (only_answers_can_move); look_on runs such a look
on a loop's own thread.
"""

from __future__ import annotations

import asyncio.futures
import concurrent.futures.thread
import os
import queue
import socket
import sys
import threading
import types

_THREADING = threading.__file__
_QUEUE = queue.__file__
_FUTURES_WORKER = (concurrent.futures.thread.__file__, "_worker")
_ANYIO_WORKER = (os.path.join("anyio", "_backends", "_asyncio.py"), "run")
# Where an idle worker thread's innermost Python frame is: concurrent.futures' at its queue's
# get() (a C call), anyio's in queue.Queue.get(), at the Condition's wait().
_IDLE = {_FUTURES_WORKER, (_THREADING, "wait"), (_QUEUE, "get")}
# What asyncio.sleep() schedules: it completes the future the sleeping task awaits.
_SLEEP_DONE = getattr(asyncio.futures, "_set_result_unless_cancelled", None)
# Where a thread blocked reading a socket's answer is: urllib and http.client (requests too) in
# SocketIO.readinto, httpx's sync client in httpcore's sync stream.
_READS = {(socket.__file__, "readinto"), (os.path.join("httpcore", "_backends", "sync.py"), "read")}


def threads_blocked_in_a_pool(threads=None) -> int:
    """How many threads (of `threads`, or of all) wait, blocked, in a SQLAlchemy pool queue.

    Read from each thread's stack: a Condition.wait called from the queue's get(). A get() that
    does not block (the pool may still open a connection) is not counted.
    """
    queue_module = sys.modules.get("sqlalchemy.util.queue")  # not imported: no pool to wait in
    if queue_module is None:
        return 0
    pool_queue = queue_module.__file__
    frames = sys._current_frames()
    idents = frames if threads is None else [t.ident for t in threads]
    blocked = 0
    for ident in idents:
        frame, waiting = frames.get(ident), False
        while frame is not None:
            code = frame.f_code
            if code.co_filename == _THREADING and code.co_name == "wait":
                waiting = True
            elif waiting and code.co_filename == pool_queue and code.co_name == "get":
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


def nothing_due_but_io(loop, tasks, until: float) -> bool:
    """True when, on `loop`, nothing is due to run before `until` (loop.time()) except what wakes
    one of `tasks`: no other callback ready, no other timer due. Then code outside `tasks` runs
    before then only if I/O wakes it (a socket's data, a thread's call_soon_threadsafe).

    Call it on the loop's own thread. Read from asyncio's own queues (BaseEventLoop._ready and
    _scheduled, the same since CPython 3.4; read here on 3.10-3.13); a callback of a kind this does not know, or a loop
    without those queues (uvloop), counts as due: the caller waits instead.
    """
    ready, scheduled = getattr(loop, "_ready", None), getattr(loop, "_scheduled", None)
    if ready is None or scheduled is None:
        return False
    due = [*ready, *(t for t in scheduled if not t.cancelled() and t.when() < until)]
    # The loop's own reader of its wake-up pipe is ready whenever a thread called it (this look).
    wakeup = getattr(loop, "_read_from_self", None)
    return all(handle._callback == wakeup or _wakes_one_of(handle, tasks) for handle in due)


def _wakes_one_of(handle, tasks) -> bool:
    callback = getattr(handle, "_callback", None)
    if getattr(callback, "__self__", None) in tasks:  # a task's next step or its wake-up
        return True
    if callback is _SLEEP_DONE:  # asyncio.sleep(): the future it awaits
        future = handle._args[0]
        callbacks = getattr(future, "_callbacks", None) or ()
        return bool(callbacks) and all(getattr(cb, "__self__", None) in tasks for cb, _ in callbacks)
    return False


def threads_at_work(files) -> bool:
    """True when a thread other than this one runs code of `files` (a learner's own thread, a
    job it gave a pool), or a worker thread of concurrent.futures (asyncio.to_thread,
    run_in_executor) or anyio (run_in_threadpool) runs a job of any kind: when it ends, its
    result reaches an event loop, so a caller of nothing_due_but_io waits instead."""
    files, me = {os.path.normcase(f) for f in files}, threading.get_ident()
    for ident, top in sys._current_frames().items():
        if ident == me:
            continue
        spots: list[tuple[str, str]] = []
        frame: types.FrameType | None = top
        while frame is not None:
            spots.append((frame.f_code.co_filename, frame.f_code.co_name))
            frame = frame.f_back
        if any(os.path.normcase(path) in files for path, _ in spots):
            return True
        worker = any(spot == _FUTURES_WORKER or _is_anyio_worker(spot) for spot in spots)
        if worker and spots[0] not in _IDLE:
            return True
    return False


def _is_anyio_worker(spot: tuple[str, str]) -> bool:
    return spot[0].endswith(_ANYIO_WORKER[0]) and spot[1] == _ANYIO_WORKER[1]


def only_answers_can_move(loop, skip=(), within: float = 0.5) -> bool:
    """True when no thread of this process can do anything but wait for an answer: each one but
    this one and `skip` (idents) is idle (a pool's worker waiting for a job, a wait on a lock or an
    event), blocked reading a socket (_READS), or runs `loop` with nothing due on it in the next
    `within` s (nothing_due_but_io, looked at on the loop's thread). Then a client of a server
    sends nothing more until the server answers something. Call it from a thread of its own; a
    thread found anywhere else, or a loop that does not look within 50 ms, answers False. (A
    wait on a lock or an event counts as idle even with a timeout: a thread that wakes on such
    a timer to send a request is not seen.)"""
    loop_thread = getattr(loop, "_thread_id", None)
    me = threading.get_ident()
    for ident, top in sys._current_frames().items():
        if ident == me or ident in skip:
            continue
        spot = (top.f_code.co_filename, top.f_code.co_name)
        if spot in _IDLE or _reads(spot):
            continue
        if ident != loop_thread or not _looks_idle(loop, within):
            return False
    return True


def _reads(spot: tuple[str, str]) -> bool:
    return any(spot[1] == name and spot[0].endswith(path) for path, name in _READS)


def _looks_idle(loop, within: float) -> bool:
    return look_on(loop, lambda: nothing_due_but_io(loop, (), loop.time() + within), timeout=0.05)


def look_on(loop, look, timeout: float) -> bool:
    """What look() says, run on `loop`'s own thread between two steps of its tasks (where its
    queues can be read): call it from another thread. False when the loop is closed, when it does
    not run look() within `timeout` (held by a blocking call: a late look is dropped), or when
    look() raises (insides it does not know count as 'wait'; never a traceback on that loop)."""
    looked, answer = threading.Event(), [False]

    def run() -> None:
        try:
            answer[0] = bool(look())
        except Exception:
            answer[0] = False
        finally:
            looked.set()

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # the loop is closed
        return False
    return looked.wait(timeout) and answer[0]
