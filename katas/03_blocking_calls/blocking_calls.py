"""Kata 03 - blocking calls. Read README.md in this folder first.

Fix the functions below; `pytest katas/03_blocking_calls` tells you, rule by rule, what is still
wrong. Only this file is yours to edit: the specs are in test_blocking_calls.py.
"""

import asyncio
import hashlib
import hmac
import json
import os
import time
import urllib.request

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

BACKOFF = 0.2  # seconds fetch_with_retry waits before trying again
ITERATIONS = 200_000  # pbkdf2 rounds: slow CPU work on purpose (about 0.1 s; 0.2 s when busy)


async def fetch_json(url: str) -> dict:
    """GET `url` from an HTTP server and return its JSON body (rule EL4).

    While it waits for the server, other coroutines on the event loop must keep running.
    """
    # TODO: this answers correctly, but urlopen holds the event loop's thread until the server
    # answers (EL4).
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


async def fetch_all(urls: list[str]) -> list[dict]:
    """Fetch every URL at the same time; return their JSON bodies in the order of `urls` (EL4)."""
    # TODO: one after another: each fetch starts only once the previous one has answered (EL4).
    return [await fetch_json(url) for url in urls]


async def fetch_with_retry(url: str, attempts: int = 3, backoff: float = BACKOFF) -> dict:
    """GET `url`; on 503 (busy) wait `backoff` seconds, try again; `attempts` tries in all (EL4)."""
    async with httpx.AsyncClient(timeout=10) as client:
        for attempt in range(1, attempts + 1):
            response = await client.get(url)
            if response.status_code != 503 or attempt == attempts:
                response.raise_for_status()
                return response.json()
            # TODO: wait `backoff` seconds without holding the event loop (EL4).
            time.sleep(backoff)


async def hash_password(password: str) -> str:
    """Hash a password for storage: pbkdf2-sha256 with a random salt (rule EL5).

    Pure CPU work, no I/O: nothing in it can be awaited.
    """
    # TODO: nothing in here waits for I/O: should this be `async def` at all? (EL5)
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
        # TODO: this answers correctly, but the hashing runs on the event loop's thread, and
        # every other request waits until it is done (EL5).
        password_hash = await hash_password(form.password)
        return {"username": form.username, "password_hash": password_hash}

    return app
