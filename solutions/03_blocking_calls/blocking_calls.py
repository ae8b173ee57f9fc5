"""Kata 03 - blocking calls. Read README.md in this folder first.

Fix the functions below; `pytest katas/03_blocking_calls` tells you, rule by rule, what is still
wrong. Only this file is yours to edit: the specs are in test_blocking_calls.py.
"""

import asyncio
import hashlib
import hmac
import os

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

BACKOFF = 0.2  # seconds fetch_with_retry waits before trying again
ITERATIONS = 200_000  # pbkdf2 rounds: slow CPU work on purpose (about 0.1 s; 0.2 s when busy)


async def fetch_json(url: str) -> dict:
    """GET `url` from an HTTP server and return its JSON body (rule EL4).

    While it waits for the server, other coroutines on the event loop must keep running.
    """
    async with httpx.AsyncClient(timeout=10) as client:
        # await: the loop serves other coroutines while this request waits for the server.
        response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(urls: list[str]) -> list[dict]:
    """Fetch every URL at the same time; return their JSON bodies in the order of `urls` (EL4)."""
    # gather sends every request before waiting on any, and keeps the results in url order.
    return await asyncio.gather(*(fetch_json(url) for url in urls))


async def fetch_with_retry(url: str, attempts: int = 3, backoff: float = BACKOFF) -> dict:
    """GET `url`; on 503 (busy) wait `backoff` seconds, try again; `attempts` tries in all (EL4)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for attempt in range(1, attempts + 1):
            response = await client.get(url)
            if response.status_code != 503 or attempt == attempts:
                response.raise_for_status()
                return response.json()
            # asyncio.sleep waits without holding the loop: other requests run during the backoff.
            await asyncio.sleep(backoff)


def hash_password(password: str) -> str:
    """Hash a password for storage: pbkdf2-sha256 with a random salt (rule EL5).

    Pure CPU work, no I/O: nothing in it can be awaited.
    """
    # Plain def: nothing here waits, so there is nothing to await; the caller picks the thread.
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Given: True when `password` matches a hash made by hash_password."""
    _, iterations, salt, digest = stored.split("$")
    again = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(again.hex(), digest)


class SignUp(BaseModel):
    username: str
    password: str


def create_app() -> FastAPI:
    """A new FastAPI app: POST /signup {"username", "password"} -> {"username", "password_hash"}.

    (A real service stores the hash; this one returns it so the specs can check it.)
    """
    app = FastAPI()

    @app.post("/signup")
    async def signup(form: SignUp) -> dict:
        # CPU work, not I/O: not awaited itself; a worker thread runs it while the loop serves on.
        password_hash = await asyncio.to_thread(hash_password, form.password)
        return {"username": form.username, "password_hash": password_hash}

    return app
