"""kata_tools.serving: the real uvicorn server the HTTP specs run, started and stopped on time."""

import asyncio
import socket
import threading
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from kata_tools.serving import ServerDidNotStart, serving

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


def app_with_lifespan(events: list[str], fail_start: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        events.append(f"start on {threading.current_thread().name}")
        if fail_start:
            raise RuntimeError("no database")
        yield
        events.append("stop")

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello():
        return {"hello": "world"}

    @app.get("/hang")
    async def hang():
        await asyncio.sleep(60)

    return app


def refused(base_url: str) -> bool:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


async def test_the_app_answers_on_127_0_0_1_with_its_lifespan_run_on_the_server_thread():
    events: list[str] = []
    async with serving(app_with_lifespan(events)) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=base_url, verify=False) as http:
            answer = await http.get("/hello")
    assert answer.json() == {"hello": "world"}
    assert events[0] != f"start on {threading.current_thread().name}", "the lifespan ran on the spec's thread"
    assert events[-1] == "stop", "the lifespan's shutdown did not run"
    assert refused(base_url), "the port still accepts connections after the block"


async def test_a_lifespan_that_fails_at_start_up_is_server_did_not_start():
    with pytest.raises(ServerDidNotStart):
        async with serving(app_with_lifespan([], fail_start=True)):
            pass


async def test_a_hung_route_holds_the_stop_no_longer_than_the_graceful_timeout():
    async with httpx.AsyncClient(verify=False) as http:
        async with serving(app_with_lifespan([]), graceful=1) as base_url:
            hung = asyncio.ensure_future(http.get(f"{base_url}/hang", timeout=30))
            await asyncio.sleep(0.3)  # the request is in the route
            started = time.monotonic()
        took = time.monotonic() - started
        done, _ = await asyncio.wait([hung], timeout=5)
        assert done, "the hung request was still open after the server stopped"
        if not hung.cancelled():
            hung.exception()  # retrieved (an error or a reply), so asyncio does not warn of it
    # 1 s of grace, the rest margin (5x and more on a loaded machine)
    assert took < 5.0, f"the stop took {took:.1f} s with a 1 s graceful timeout"
