"""What happens when a client closes its socket while an async def endpoint awaits a slow query.

    pytest benchmarks/disconnect_probe.py -s -q -W ignore::DeprecationWarning     # about 20 s

uvicorn serves a FastAPI app on 127.0.0.1 (a thread of its own); a raw asyncio socket sends
GET /slow, whose endpoint runs SELECT pg_sleep(5) on asyncpg through SQLAlchemy; once the query is
active in pg_stat_activity the client closes its socket, and the probe watches that query and the
pool's checked-out count. Three endpoints: "plain" (awaits the query), "poll" (the query as a task,
`await request.is_disconnected()` every 50 ms, cancel on disconnect), "receive" (a task waiting on
`request.receive()` for http.disconnect, raced against the query with asyncio.wait).

Measured 2026-12-02 (uvicorn 0.55, starlette 1.10, fastapi 0.165, SQLAlchemy 2.1.9, asyncpg 0.32,
PostgreSQL 18.4, 2 busy cores), seconds after the close, for http="httptools" and http="h11" alike:
(two runs each)
    plain:   the handler is NOT cancelled; the query stays active and its connection checked out
             until pg_sleep ends: gone at 5.00-5.07 s; the handler then returns normally.
    poll:    query gone and connection back at 0.08-0.11 s.
    receive: receive() returns http.disconnect right at the close; query gone and connection
             back at 0.01-0.04 s.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.asyncio

ACTIVE = text(
    "SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND query ILIKE '%pg_sleep(%'"
)


def make_app(url, mode: str, log: list):
    app = FastAPI()
    state: dict = {}

    async def run():
        async with state["engine"].connect() as c:
            log.append(("pid", (await c.execute(text("SELECT pg_backend_pid()"))).scalar()))
            await c.execute(text("SELECT pg_sleep(5)"))

    @app.on_event("startup")
    async def _start():
        state["engine"] = create_async_engine(url)

    @app.on_event("shutdown")
    async def _stop():
        await state["engine"].dispose()

    @app.get("/slow")
    async def slow(request: Request):
        t0 = time.monotonic()
        try:
            if mode == "plain":
                await run()
            elif mode == "poll":
                task = asyncio.ensure_future(run())
                while not task.done():
                    if await request.is_disconnected():
                        task.cancel()
                        log.append(("poll-saw-disconnect", round(time.monotonic() - t0, 3)))
                        break
                    await asyncio.wait({task}, timeout=0.05)
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            elif mode == "receive":
                task = asyncio.ensure_future(run())

                async def watch():
                    while True:
                        m = await request.receive()
                        log.append(("receive", m["type"], round(time.monotonic() - t0, 3)))
                        if m["type"] == "http.disconnect":
                            return

                w = asyncio.ensure_future(watch())
                done, _ = await asyncio.wait({task, w}, return_when=asyncio.FIRST_COMPLETED)
                if w in done:
                    task.cancel()
                w.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            log.append(("handler-returned", round(time.monotonic() - t0, 3)))
        except asyncio.CancelledError:
            log.append(("handler-cancelled", round(time.monotonic() - t0, 3)))
            raise
        return {"ok": True}

    state["pool"] = lambda: state["engine"].sync_engine.pool.checkedout()
    return app, state


@pytest_asyncio.fixture
async def spectator(seeded_db):
    e = create_async_engine(seeded_db.async_url, poolclass=NullPool)
    yield e
    await e.dispose()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("mode", ["plain", "poll", "receive"])
async def test_probe(seeded_db, spectator, http, mode):
    log: list = []
    app, state = make_app(seeded_db.async_url, mode, log)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, http=http, log_level="critical", access_log=False, timeout_graceful_shutdown=1)
    )
    th = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
    th.start()
    while not server.started:
        await asyncio.sleep(0.01)
    _r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await w.drain()
    t0 = time.monotonic()
    while True:
        async with spectator.connect() as c:
            rows = (await c.execute(ACTIVE)).all()
        if any(row.state == "active" and "pg_sleep(5)" in row.query for row in rows):
            break
        await asyncio.sleep(0.01)
    seen = round(time.monotonic() - t0, 3)
    w.close()
    closed_at = time.monotonic()
    timeline = []
    while time.monotonic() - closed_at < 6.5:
        async with spectator.connect() as c:
            rows = (await c.execute(ACTIVE)).all()
        active = [row.pid for row in rows if row.state == "active" and "pg_sleep(5)" in row.query]
        timeline.append((round(time.monotonic() - closed_at, 2), len(active), state["pool"]()))
        if not active and state["pool"]() == 0:
            break
        await asyncio.sleep(0.05)
    server.should_exit = True
    await asyncio.to_thread(th.join, 10)
    first = timeline[0]
    gone = next((t for t in timeline if t[1] == 0), None)
    back = next((t for t in timeline if t[2] == 0), None)
    print(
        f"\n[{http}/{mode}] query seen after {seen}s; right after close: active={first[1]} out={first[2]}; "
        f"query gone at {gone and gone[0]}s, pool back at {back and back[0]}s; log={log}"
    )
