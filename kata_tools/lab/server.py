"""The lab's server: one FastAPI app with a route per mode, served by uvicorn in a child process.

    python -m kata_tools.lab.server --fd FD --parent PID

The lab starts it (not meant to be run by hand): it passes the listening socket it bound on
127.0.0.1 as FD, its own pid as PID, and the database URL (postgresql://..., as DATABASE_URL holds
it) in KATA_LAB_DATABASE_URL. The server exits on SIGTERM/SIGINT, and by itself if the lab dies.

Each request handler runs `SELECT pg_sleep(t)` on PostgreSQL and records three instants:
when it started (it had its worker: a thread, or the event loop), when it had its connection,
and when its query finished. The lab reads them from GET /lab/records. All instants are
time.monotonic(), a system-wide clock, so the lab can set them beside its own.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import os
import socket
import threading
import time
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import Pool, QueuePool
from starlette.routing import Route

from kata_tools.lab.modes import DEFAULT_THREADS, MODES
from kata_tools.probes import loop_running_here

URL_VARIABLE = "KATA_LAB_DATABASE_URL"

# Each request borrows its connection from SQLAlchemy's pool (engine.connect(), and for the async
# modes the pool's raw_connection(): the pool and its cap are what the modes show, CP3/CP7) and hands the statement to the driver on that connection.
# SQLAlchemy Core's statement machinery (compile cache, execution context, result object) costs
# about 120 us of Python per request on a small machine: the loop pays it for every request in
# turn, and 40 worker threads queue for the GIL to run it. No rule is about it.
SLEEP_PSYCOPG2 = "SELECT pg_sleep(%s)"
SLEEP_ASYNCPG = "SELECT pg_sleep($1)"  # asyncpg prepares it once per connection, then reuses it
# one-session (SS1) goes through the session, as the mistake it shows does: SQLAlchemy's asyncpg
# adapter lets one statement at a time onto the session's connection; the others wait for it
# inside `await session.execute`. PostgreSQL says when each statement began (statement_timestamp,
# on the system's wall clock): that is when the request had the connection.
SLEEP_ON_THE_SESSION = text("SELECT extract(epoch FROM statement_timestamp())::float8 FROM pg_sleep(:t)")


def sleep_on(connection, t: float) -> None:
    """pg_sleep(t) on a checked-out sync connection, through psycopg2 (autocommit: no BEGIN)."""
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(SLEEP_PSYCOPG2, (t,))


async def sleep_on_async(pooled, t: float) -> None:
    """pg_sleep(t) on a connection checked out with `await engine.raw_connection()`, on asyncpg."""
    driver = pooled.driver_connection
    assert driver is not None  # a checked-out connection always has its asyncpg one
    await driver.execute(SLEEP_ASYNCPG, t)


class Lab:
    """The engines of the mode being measured, and what its handlers recorded."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self.sync_engine: Engine | None = None  # psycopg2: the def modes and async-blocking
        self.async_engine: AsyncEngine | None = None  # asyncpg: the async modes
        self.session: AsyncSession | None = None  # one-session: the one every request shares
        self.wall_minus_monotonic = 0.0  # PostgreSQL's instants -> time.monotonic()
        self.records: list[dict] = []

    def record(self, i: int, started: float, acquired: float, done: float) -> None:
        self.records.append(  # list.append is atomic: safe from worker threads too
            {
                "i": i,
                "started": started,
                "acquired": acquired,
                "done": done,
                "thread": threading.get_ident(),
                "on_loop": loop_running_here(),
            }
        )

    async def dispose(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()
        if self.sync_engine is not None:
            sync_engine, self.sync_engine = self.sync_engine, None
            await asyncio.to_thread(sync_engine.dispose)
        if self.async_engine is not None:
            async_engine, self.async_engine = self.async_engine, None
            await async_engine.dispose()

    async def prepare(self, mode: str, pool: int, threads: int, timeout: float) -> dict:
        """Fresh engine and thread limit for `mode`; its pool warmed as a running server's is."""
        gc.enable()  # the previous mode's garbage goes (see the end of this method)
        gc.unfreeze()
        await self.dispose()
        self.records = []
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = {"one-at-a-time": 1, "threads": threads}.get(mode, DEFAULT_THREADS)
        sizes = {
            "one-at-a-time": {"pool_size": 1, "max_overflow": 0},
            "threads": {"pool_size": pool, "max_overflow": 0},
            "async-default-pool": {},  # SQLAlchemy's defaults: 5 + 10
            "async-pool": {"pool_size": pool, "max_overflow": 0},
            "async-blocking": {"pool_size": 1, "max_overflow": 0},
            "one-session": {"pool_size": 1, "max_overflow": 0},  # the session holds the one
        }[mode]
        # A bare pg_sleep needs no transaction: AUTOCOMMIT spares each request the BEGIN and
        # ROLLBACK round trips, which cost the server's CPU but are not what the rules are about.
        options = dict(sizes, pool_timeout=timeout, isolation_level="AUTOCOMMIT")
        if MODES[mode].driver == "asyncpg":
            async_engine = create_async_engine(self.url.set(drivername="postgresql+asyncpg"), **options)
            self.async_engine = async_engine
            warm = _pool_size(async_engine.pool)
            await _retrying(lambda: _warm_async(async_engine, warm))
            if mode == "one-session":
                # Warm: its first statement checks out the connection, which the session keeps
                # (a cold session shared by many tasks fails instead: IllegalStateChangeError).
                self.session = AsyncSession(async_engine)
                await self.session.execute(SLEEP_ON_THE_SESSION, {"t": 0})
                self.wall_minus_monotonic = time.time() - time.monotonic()
        else:
            sync_engine = create_engine(self.url.set(drivername="postgresql+psycopg2"), **options)
            self.sync_engine = sync_engine
            warm = min(_pool_size(sync_engine.pool), limiter.total_tokens)
            await _retrying(lambda: asyncio.to_thread(_warm_sync, sync_engine, warm))
        # No garbage collection while the mode is measured (GET /lab/records turns it back on):
        # a burst allocates enough for CPython to collect 20-odd times, about 9 ms per burst of
        # 100 requests here, on the one loop that serves them all. Frozen, the engines and the app
        # are never scanned again. The rules predict waiting, not the collector's sweeps.
        gc.collect()
        gc.freeze()
        gc.disable()
        return {"mode": mode, "warm_connections": warm, "thread_limit": limiter.total_tokens}


def _pool_size(pool: Pool) -> int:
    assert isinstance(pool, QueuePool)  # create_engine's pool for PostgreSQL (the asyncio one too)
    return pool.size()


def _warm_sync(engine, count: int) -> None:
    held = [engine.connect() for _ in range(count)]
    for connection in held:
        sleep_on(connection, 0)
        connection.close()


async def _warm_async(engine, count: int) -> None:
    held = [await engine.raw_connection() for _ in range(count)]
    for pooled in held:
        await sleep_on_async(pooled, 0)  # the statement is prepared on every connection
        pooled.close()  # AUTOCOMMIT: nothing to roll back, so the checkin does no I/O


async def _retrying(warm, seconds: float = 5.0) -> None:
    """Warm up, retrying while PostgreSQL still counts the backends of the previous mode."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await warm()
        except Exception as e:
            if "too many clients" not in str(e) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# FastAPI 0.16x asks OpenTelemetry on every request whether tracing, metrics or logs are
# configured; the lab exports none, so it says so once (older FastAPI has no such option).
_NO_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def build_app(url: str) -> FastAPI:
    lab = Lab(url)

    @asynccontextmanager
    async def lifespan(app):
        yield
        await lab.dispose()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None, **_NO_TELEMETRY)
    app.state.lab = lab

    # The request's number and its wait come as path segments, read as they are: FastAPI's
    # validation of declared parameters (`i: int, t: float`) costs tens of microseconds per
    # request, paid by the one loop for each of the N requests before the last one can send its
    # query. The lab sends them; no rule is about validating them.

    def query_on_a_thread(request: Request):
        # A def endpoint: FastAPI runs it on a worker thread of the default thread limiter.
        assert lab.sync_engine is not None, "POST /lab/prepare makes the engine before any query"
        i, t = int(request.path_params["i"]), float(request.path_params["t"])
        started = time.monotonic()
        with lab.sync_engine.connect() as connection:
            acquired = time.monotonic()
            sleep_on(connection, t)
            done = time.monotonic()
        lab.record(i, started, acquired, done)
        return PlainTextResponse("ok")

    async def query_on_the_loop(request: Request):
        # async def: runs on the event loop, which serves others while this one awaits.
        assert lab.async_engine is not None, "POST /lab/prepare makes the engine before any query"
        i, t = int(request.path_params["i"]), float(request.path_params["t"])
        started = time.monotonic()
        # The pool's own checkout, one greenlet hop; AsyncConnection's connect, raw connection and
        # close took three (about 60 us a request here, paid in turn by the one loop).
        pooled = await lab.async_engine.raw_connection()
        try:
            acquired = time.monotonic()
            await sleep_on_async(pooled, t)
            done = time.monotonic()
        finally:
            pooled.close()
        lab.record(i, started, acquired, done)
        return PlainTextResponse("ok")

    async def query_on_one_session(request: Request):
        # async def, every request awaiting its query on the one AsyncSession all of them share.
        assert lab.session is not None, "POST /lab/prepare makes the session before any query"
        i, t = int(request.path_params["i"]), float(request.path_params["t"])
        started = time.monotonic()
        began = (await lab.session.execute(SLEEP_ON_THE_SESSION, {"t": t})).scalar_one()
        done = time.monotonic()
        acquired = began - lab.wall_minus_monotonic  # on the lab's clock, kept within its instants
        lab.record(i, started, min(max(acquired, started), done), done)
        return PlainTextResponse("ok")

    async def blocking_query_on_the_loop(request: Request):
        # The trap: async def calling the sync driver. No await: the loop is held for t (EL3).
        return query_on_a_thread(request)

    handlers = {
        "one-at-a-time": query_on_a_thread,
        "threads": query_on_a_thread,
        "async-default-pool": query_on_the_loop,
        "async-pool": query_on_the_loop,
        "async-blocking": blocking_query_on_the_loop,
        "one-session": query_on_one_session,
    }
    # Starlette's routes inside the FastAPI app: FastAPI's per-route layer (dependency solving,
    # response handling) cost about 50 us a request here. def endpoints still run on the same
    # thread pool (starlette.concurrency.run_in_threadpool, which FastAPI calls too).
    for name, handler in handlers.items():
        app.router.routes.append(Route(f"/{name}/{{i}}/{{t}}", handler, methods=["GET"]))

    @app.get("/lab/health")
    async def health():
        return PlainTextResponse("ok")

    @app.post("/lab/prepare")
    async def prepare(mode: str, pool: int, threads: int, timeout: float):
        try:
            return await lab.prepare(mode, pool, threads, timeout)
        except Exception as e:
            return JSONResponse({"error": f"{type(e).__name__}: {e}".strip()}, status_code=500)

    @app.get("/lab/records")
    async def records():
        gc.enable()  # the mode is measured (POST /lab/prepare turned it off)
        return JSONResponse(lab.records)

    return app


def _exit_when_orphaned(parent: int) -> None:
    """If the lab dies without stopping us (SIGKILL), stop anyway: no server is left behind."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(3)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m kata_tools.lab.server")
    parser.add_argument("--fd", type=int, required=True, help="listening socket passed by the lab")
    parser.add_argument("--parent", type=int, required=True, help="the lab's pid")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--http", choices=("h11", "httptools"), default="h11")
    args = parser.parse_args(argv)
    threading.Thread(target=_exit_when_orphaned, args=(args.parent,), daemon=True).start()
    sock = socket.socket(fileno=args.fd)  # family and type are read from the descriptor
    config = uvicorn.Config(
        build_app(os.environ[URL_VARIABLE]),
        loop=args.loop,  # the lab resolved "auto" to what this platform has (run.resolve_engine)
        http=args.http,
        lifespan="on",
        log_level="warning",
        access_log=False,
        # On 127.0.0.1 with no proxy in front: no X-Forwarded-* middleware on every request, and
        # no Server or Date header to add to every reply. What is left is the app's own work.
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=1,  # interrupted: requests in flight get 1 s
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
