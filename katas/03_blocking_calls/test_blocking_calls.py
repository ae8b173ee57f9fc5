"""Specs of kata 03: blocking calls (rules EL4, EL5). Do not edit: edit blocking_calls.py.

The fetches talk to a real HTTP server on 127.0.0.1, started for each spec on a thread of its
own and stopped after it. The server counts how many requests it is answering at once, and
holds each answer until all the requests the spec sent are in (or nobody new has arrived for a
moment), so the counts are exact on a busy machine. Blocking calls are caught by spies that
record whether an event loop was running in the thread that called them.
"""

import asyncio
import hashlib
import inspect
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kata_tools.probes import BlockingSpy, Heartbeat, InFlight, loop_running_here

pytestmark = pytest.mark.asyncio

# The server lets held answers go once no new request has arrived for this long. Only a wrong
# solution waits for it; requests from a working one arrived at most 30 ms apart under load.
QUIET = 0.3
PASSWORD = "correct horse battery staple"


@pytest.fixture
def kata(kata_module):
    return kata_module("blocking_calls.py")


# --- the slow server ------------------------------------------------------------------------------


class SlowServer:
    """A real HTTP server (stdlib, a thread per request) whose answers wait, as a busy API's do.

    GET /item/<n>?after=S    holds until `expect(k)` requests are in at once (or QUIET passes
                             with no new arrival), then waits S seconds and answers {"item": n}
    GET /flaky/<key>?fail=F  answers 503 to the first F requests for key, then
                             {"key": key, "attempts": <requests so far>}
    """

    def __init__(self):
        self.probe = InFlight()
        self.target = 1
        self.opened = threading.Event()
        self.last_arrival = None
        self.hits = {}  # flaky key -> [perf_counter of each request]
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a client that connects and never sends cannot hang the server

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                _, kind, key = parts.path.split("/", 2)
                if kind == "item":
                    server.hold(int(key), float(query.get("after", 0)))
                    self.answer(200, {"item": int(key)})
                elif kind == "flaky":
                    with server.lock:
                        server.hits.setdefault(key, []).append(time.perf_counter())
                        attempts = len(server.hits[key])
                    if attempts <= int(query.get("fail", 0)):
                        self.answer(503, {"error": "busy, try again"})
                    else:
                        self.answer(200, {"key": key, "attempts": attempts})
                else:
                    self.answer(404, {"error": "not found"})

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass  # no access log in the learner's output

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="kata slow server"
        )
        self.watcher = threading.Thread(target=self._watch, name="kata slow server gate")

    def url(self, path: str) -> str:
        return self.base + path

    def expect(self, target: int) -> None:
        """Hold /item answers until `target` requests are in at once."""
        self.target = target

    def hold(self, n: int, after: float) -> None:
        with self.probe.track(n):
            with self.lock:
                self.last_arrival = time.perf_counter()
            if self.probe.current >= self.target:
                self.opened.set()
            self.opened.wait(5)
            if after:
                time.sleep(after)

    def _watch(self):
        while not self.opened.wait(0.005):
            with self.lock:
                last = self.last_arrival
            if last is not None and time.perf_counter() - last >= QUIET:
                self.opened.set()

    def start(self):
        self.thread.start()
        self.watcher.start()
        return self

    def stop(self):
        self.opened.set()
        self.watcher.join()
        self.httpd.shutdown()
        self.httpd.server_close()  # joins the request threads
        self.thread.join()


@pytest.fixture
def server():
    slow = SlowServer().start()
    yield slow
    slow.stop()


def where_it_blocked(spy: BlockingSpy) -> str:
    return f"{spy.name}, {spy.calls_on_loop}x"


# --- EL4: every I/O inside async def is awaited ---------------------------------------------------


@pytest.mark.rule("EL4")
async def test_five_fetches_started_together_wait_on_the_server_at_once(kata, server):
    """Five fetch_json calls started together are all waiting on the server at the same time."""
    server.expect(5)
    bodies = await asyncio.gather(*(kata.fetch_json(server.url(f"/item/{i}")) for i in range(5)))

    assert list(bodies) == [{"item": i} for i in range(5)], (
        f"fetch_json returned {list(bodies)!r} for /item/0 to /item/4; it must return the "
        f"server's JSON body as a dict (EL4)."
    )
    assert server.probe.peak == 5, (
        f"The server had at most {server.probe.peak} of 5 requests from fetch_json at once: each "
        f"fetch held the event loop until its answer came. Send it with "
        f"`await client.get(url)` on an httpx.AsyncClient, not urllib or httpx.Client (EL4)."
    )


@pytest.mark.rule("EL4")
async def test_fetch_json_opens_no_blocking_connection_on_the_loop(kata, server, monkeypatch):
    """fetch_json never opens a blocking socket connection on the event loop's thread."""
    spy = BlockingSpy("socket.create_connection")
    monkeypatch.setattr(socket, "create_connection", spy.wrap(socket.create_connection))

    body = await kata.fetch_json(server.url("/item/1"))

    assert spy.calls_on_loop == 0, (
        f"fetch_json opened a blocking connection on the event loop's thread "
        f"({where_it_blocked(spy)}), as urllib.request, requests and httpx.Client do: every "
        f"coroutine waits until the server answers. Use `async with httpx.AsyncClient() as "
        f"client: await client.get(url)` (EL4)."
    )
    assert body == {"item": 1}, f"fetch_json returned {body!r}, not the server's JSON (EL4)."


@pytest.mark.rule("EL4")
async def test_fetch_all_has_every_request_waiting_on_the_server_at_once(kata, server):
    """fetch_all sends all its requests before waiting for any: six URLs, six requests at once."""
    server.expect(6)
    bodies = await kata.fetch_all([server.url(f"/item/{i}") for i in range(6)])

    assert list(bodies) == [{"item": i} for i in range(6)], (
        f"fetch_all returned {list(bodies)!r} for /item/0 to /item/5; it must return each "
        f"server's JSON body, in URL order (EL4)."
    )
    assert server.probe.peak == 6, (
        f"fetch_all had at most {server.probe.peak} of its 6 requests at the server at once. "
        f"Awaiting one fetch after another makes 6 waits out of one; start every fetch, then "
        f"await them together (asyncio.gather) (EL4)."
    )


@pytest.mark.rule("EL4")
async def test_fetch_all_returns_the_answers_in_url_order(kata, server):
    """Answers come back in URL order even when the later URLs answer first."""
    server.expect(6)
    # /item/0 answers last, /item/5 first.
    urls = [server.url(f"/item/{i}?after={(5 - i) * 0.02}") for i in range(6)]
    bodies = await kata.fetch_all(urls)

    assert list(bodies) == [{"item": i} for i in range(6)], (
        f"fetch_all returned {[b.get('item') if isinstance(b, dict) else b for b in bodies]} for "
        f"items 0-5, which answered in the order 5, 4, ..., 0. Return them in URL order "
        f"(asyncio.gather keeps the order of its arguments; as_completed does not) (EL4)."
    )


@pytest.mark.rule("EL4")
async def test_fetch_with_retry_waits_the_backoff_between_attempts(kata, server):
    """After a 503, fetch_with_retry really waits `backoff` seconds before it tries again."""
    backoff = 0.15
    body = await kata.fetch_with_retry(server.url("/flaky/a?fail=2"), attempts=3, backoff=backoff)

    hits = server.hits.get("a", [])
    gaps = [round(b - a, 3) for a, b in zip(hits, hits[1:])]
    assert body == {"key": "a", "attempts": 3} and len(hits) == 3, (
        f"fetch_with_retry returned {body!r} after {len(hits)} request(s); the server answers "
        f"503 twice, then the JSON: 3 requests in all (EL4)."
    )
    # A lower bound only: a busy machine makes waits longer, never shorter. Without a real
    # wait the gap is one round trip, a few milliseconds.
    assert all(gap >= 0.9 * backoff for gap in gaps), (
        f"fetch_with_retry retried after {gaps} s, not after the {backoff} s backoff. "
        f"asyncio.sleep(...) without await only creates a coroutine: nothing waits. "
        f"Write `await asyncio.sleep(backoff)` (EL4)."
    )


@pytest.mark.rule("EL4")
async def test_fetch_with_retry_backs_off_without_a_blocking_sleep(kata, server, monkeypatch):
    """The backoff never calls time.sleep on the event loop's thread."""
    spy = BlockingSpy("time.sleep")
    monkeypatch.setattr(time, "sleep", spy.wrap(time.sleep))

    body = await kata.fetch_with_retry(server.url("/flaky/b?fail=1"), attempts=2, backoff=0.05)

    assert spy.calls_on_loop == 0, (
        f"fetch_with_retry froze the event loop during its backoff ({where_it_blocked(spy)} on "
        f"the loop's thread): "
        f"no other request could run meanwhile. Replace it with `await asyncio.sleep(backoff)` "
        f"(EL4)."
    )
    assert body == {"key": "b", "attempts": 2}, f"fetch_with_retry returned {body!r} (EL4)."


# --- EL5: CPU work is not awaited, and still must leave the loop ----------------------------------


@pytest.mark.rule("EL5")
async def test_hash_password_is_a_plain_function_that_returns_the_hash(kata):
    """Hashing does no I/O: hash_password is a plain call returning the hash, nothing to await."""
    hashed = await asyncio.to_thread(kata.hash_password, PASSWORD)
    if inspect.iscoroutine(hashed):
        hashed.close()  # never run: close it quietly
        pytest.fail(
            "hash_password returned a coroutine: it is `async def`, though nothing in it waits "
            "for I/O. `async def` does not move CPU work off the loop, it only makes callers "
            "await it on the loop. Make it a plain `def` (EL5).",
            pytrace=False,
        )
    ok = isinstance(hashed, str) and await asyncio.to_thread(kata.verify_password, PASSWORD, hashed)
    assert ok, (
        f"hash_password({PASSWORD!r}) returned {hashed!r:.80}, which verify_password does not "
        f"accept; keep the given pbkdf2 code (EL5)."
    )


async def sign_up(client: httpx.AsyncClient, username: str) -> httpx.Response:
    try:
        return await client.post("/signup", json={"username": username, "password": PASSWORD})
    except TypeError as e:
        if "can't be used in 'await' expression" in str(e):
            pytest.fail(
                f"POST /signup raised TypeError: {e}. `await` works only on coroutines and other "
                f"awaitables; hash_password is a plain function. Await the thread that runs it: "
                f"`await asyncio.to_thread(hash_password, password)` (EL5).",
                pytrace=False,
            )
        if "object is not callable" in str(e):
            pytest.fail(
                f"POST /signup raised TypeError: {e}. asyncio.to_thread was given the result of "
                f"hash_password(...), so the hashing had already run, on the loop. Pass the "
                f"function and its argument: `asyncio.to_thread(hash_password, password)` (EL5).",
                pytrace=False,
            )
        raise


def app_client(kata) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=kata.create_app())
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.mark.rule("EL5")
async def test_signup_hashes_the_password_off_the_event_loop(kata, monkeypatch):
    """POST /signup runs the CPU-heavy hashing on a worker thread, never on the loop's thread."""
    spy = BlockingSpy("hashlib.pbkdf2_hmac")
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", spy.wrap(hashlib.pbkdf2_hmac))

    async with app_client(kata) as client:
        response = await sign_up(client, "ada")
    calls, on_loop = spy.calls, spy.calls_on_loop

    body = response.json()
    assert response.status_code == 200 and body.get("username") == "ada", (
        f"POST /signup answered {response.status_code} {response.text[:120]}; it must answer "
        f"200 with {{\"username\": ..., \"password_hash\": ...}} (EL5)."
    )
    assert calls >= 1, (
        "POST /signup never called hashlib.pbkdf2_hmac: hash the password with hash_password (EL5)."
    )
    assert on_loop == 0, (
        f"POST /signup hashed the password on the event loop's thread ({on_loop} pbkdf2 call(s) "
        f"there): CPU work needs no await, yet it holds the loop while it runs. Hand it to a "
        f"worker thread: `await asyncio.to_thread(hash_password, ...)`, or make the endpoint "
        f"a plain `def` (EL5)."
    )
    hashed = body.get("password_hash", "")
    assert await asyncio.to_thread(kata.verify_password, PASSWORD, hashed), (
        f"POST /signup returned password_hash={hashed!r:.60}, which does not verify against "
        f"the password: return hash_password(password) (EL5)."
    )


@pytest.mark.rule("EL5")
async def test_the_loop_keeps_ticking_while_passwords_are_hashed(kata, monkeypatch):
    """While three signups hash passwords, a heartbeat task on the same loop keeps ticking."""
    heart = Heartbeat(interval=0.005)
    windows = []  # per pbkdf2 call: (ticks during it, seconds it took, ran on the loop?)
    real = hashlib.pbkdf2_hmac

    def timed_pbkdf2(*args, **kwargs):
        before, start = heart.ticks, time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            windows.append((heart.ticks - before, time.perf_counter() - start, loop_running_here()))

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", timed_pbkdf2)
    async with app_client(kata) as client:
        async with heart:
            responses = await asyncio.gather(*(sign_up(client, f"user{i}") for i in range(3)))

    assert all(r.status_code == 200 for r in responses) and len(windows) >= 3, (
        f"3 signups answered {[r.status_code for r in responses]} and hashed {len(windows)} "
        f"time(s); each must hash its password once and answer 200 (EL5)."
    )
    frozen = [w for w in windows if w[0] == 0]
    # Exact when blocked: a heartbeat cannot tick while the loop's thread is inside the hash.
    # When free it ticks every 5 ms, about 10 times per 50 ms hash.
    assert not frozen, (
        f"During {len(frozen)} of {len(windows)} password hashes ({frozen[0][1]:.2f} s each) "
        f"the heartbeat on the loop never ticked; the loop stalled for up to "
        f"{heart.max_gap:.2f} s, and every other request with it. Not awaiting CPU work is "
        f"right, running it on the loop is not: use `await asyncio.to_thread(hash_password, "
        f"...)` (EL5)."
    )
