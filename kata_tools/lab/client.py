"""A minimal HTTP/1.1 client on raw asyncio sockets: light enough to time a server with.

httpx over TCP costs milliseconds per request under concurrency (100 trivial requests took
2-3 s, against 0.07 s with raw sockets: see the project's verified facts), which would drown
the very waits the lab measures. This client opens one connection per request, sends a
`Connection: close` request and reads until the server closes: nothing else.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass


class HTTPError(Exception):
    """A request to the lab's server failed (connection refused, bad status, garbled reply)."""


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


async def request(host: str, port: int, method: str, path: str, timeout: float = 30.0) -> Reply:
    """One HTTP/1.1 request on a fresh connection; the whole reply, read until the server closes."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Length: 0\r\nConnection: close\r\n\r\n".encode("ascii")
            )
            return await reader.read()  # Connection: close, so the reply ends at EOF
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    try:
        raw = await asyncio.wait_for(exchange(), timeout)
    except asyncio.TimeoutError:
        raise HTTPError(f"{method} {path}: no reply within {timeout:g} s") from None
    except OSError as e:
        raise HTTPError(f"{method} {path}: {e.strerror or e}") from None
    head, sep, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise HTTPError(f"{method} {path}: not an HTTP reply: {raw[:60]!r}") from None
    if not sep:
        raise HTTPError(f"{method} {path}: the reply ended inside its headers")
    return Reply(status, body)  # the lab's server sends Content-Length bodies, never chunks


@dataclass
class Timing:
    """One request as the client saw it: when it was sent, when its reply was complete."""

    i: int
    sent: float
    ended: float | None = None
    status: int | None = None
    error: str | None = None


async def burst(host, port, paths: list[str], on_reply=None, timeout: float = 30.0) -> list[Timing]:
    """Send every request at once and time each one on time.monotonic().

    Every client connects first; the requests go out together once all are connected, over
    kept-alive connections, as clients with open connections send them. So the clock measures
    the server handling requests, not the kernel and the server accepting 100 handshakes.
    """
    opened = await asyncio.gather(
        *(asyncio.wait_for(asyncio.open_connection(host, port), timeout) for _ in paths),
        return_exceptions=True,
    )

    async def one(i: int, path: str, connection) -> Timing:
        timing = Timing(i, time.monotonic())
        try:
            if isinstance(connection, BaseException):
                raise HTTPError(f"GET {path}: cannot connect: {connection}")
            reader, writer = connection
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
            timing.status = await _read_reply(reader, path)
            if timing.status != 200:
                timing.error = f"HTTP {timing.status}"
        except asyncio.CancelledError:  # the burst's deadline (below)
            timing.error = f"GET {path}: no reply within {timeout:g} s"
        except (HTTPError, OSError, asyncio.IncompleteReadError) as e:
            timing.error = str(e) or type(e).__name__
        timing.ended = time.monotonic()
        if on_reply is not None:
            on_reply(timing)
        return timing

    # One deadline for the whole burst, not an asyncio.wait_for per request: on Python 3.11 and
    # older each wait_for wraps its request in one more task, work this client would do N times
    # while the clock runs. A request still waiting at the deadline is cancelled and says so.
    tasks = [asyncio.ensure_future(one(i, p, c)) for i, (p, c) in enumerate(zip(paths, opened))]
    try:
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        for connection in opened:
            if not isinstance(connection, BaseException):
                connection[1].close()


async def _read_reply(reader: asyncio.StreamReader, path: str) -> int:
    """Read one reply off a kept-alive connection (the lab's replies carry a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")
        )
    except (IndexError, ValueError, StopIteration):
        raise HTTPError(f"GET {path}: unexpected reply head {head[:80]!r}") from None
    await reader.readexactly(length)
    return status
