"""A real HTTP server for a spec: uvicorn serving an app on 127.0.0.1, in a thread of its own.

    async with serving(app) as base_url:      # "http://127.0.0.1:PORT", once uvicorn has started
        ...                                   # any real client; the app's lifespan ran on startup
    # here uvicorn has stopped: lifespan shutdown done, its thread joined

The server runs its own event loop in its thread, so whatever the app's lifespan makes (an
engine) is made, used and disposed on that loop, never shared with the spec's. The port is
bound before uvicorn starts (port 0: the system picks a free one), so two runs never race for it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn

START_WITHIN = 5.0  # seconds uvicorn may take to start before ServerDidNotStart
TICK = 0.01  # seconds between two looks at should_exit (uvicorn's own: 0.1 s)


class ServerDidNotStart(Exception):
    """uvicorn did not start: the app's lifespan startup failed or took longer than START_WITHIN."""


class _Server(uvicorn.Server):
    async def main_loop(self) -> None:
        # uvicorn looks at should_exit every 0.1 s, which every spec would wait at its stop; the
        # same ticks (Date header, limits), 10x as often. on_tick(n) is True when it should stop.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(TICK)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's steps (stop accepting, ask each connection to close, wait for connections and
        # tasks at most timeout_graceful_shutdown, then the lifespan's shutdown), but where uvicorn
        # sleeps a fixed 0.1 s before it looks, this looks every TICK: a spec waited 0.1 s more.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._settled(), self.config.timeout_graceful_shutdown)
        except asyncio.TimeoutError:  # a hung route: cancelled, as uvicorn does
            for task in self.server_state.tasks:
                task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _settled(self) -> None:
        while self.server_state.connections or self.server_state.tasks:
            await asyncio.sleep(TICK)
        for server in self.servers:
            await server.wait_closed()


@asynccontextmanager
async def serving(
    app, graceful: int = 2, log_level: str = "critical", loop: str = "auto"
) -> AsyncIterator[str]:
    """Serve `app` for the block; `graceful`: seconds requests in flight get at the stop; `loop`:
    uvicorn's (auto: uvloop where installed; "asyncio" for a spec that reads asyncio's queues)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        loop=loop,
        log_config=None,
        log_level=log_level,  # "critical": a route's expected traceback is not news
        access_log=False,
        timeout_graceful_shutdown=graceful,  # a hung route must not hold the stop
    )
    server = _Server(config)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except SystemExit:
            pass  # uvicorn exits so when the lifespan's startup fails: ServerDidNotStart below

    thread = threading.Thread(target=run, name="kata-uvicorn", daemon=True)
    thread.start()
    try:
        for _ in range(int(START_WITHIN / TICK)):
            if server.started or not thread.is_alive():
                break
            await asyncio.sleep(TICK)
        if not server.started:
            raise ServerDidNotStart(f"uvicorn did not start within {START_WITHIN:g} s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10 + graceful)
        sock.close()
