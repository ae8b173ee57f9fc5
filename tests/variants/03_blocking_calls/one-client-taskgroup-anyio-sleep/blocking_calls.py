"""Kata 03 - blocking calls (a learner's version)."""

import asyncio
import hashlib
import hmac
import os

import anyio
import httpx
from fastapi import FastAPI
from pydantic import BaseModel

BACKOFF = 0.2
ITERATIONS = 200_000


async def fetch_json(url: str, client: httpx.AsyncClient | None = None) -> dict:
    if client is None:
        async with httpx.AsyncClient(timeout=10) as own:
            return await fetch_json(url, own)
    response = await client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(urls: list[str]) -> list[dict]:
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=None)) as client:  # noqa: SIM117
        async with asyncio.TaskGroup() as group:  # Python 3.11+
            tasks = [group.create_task(fetch_json(u, client)) for u in urls]
    return [t.result() for t in tasks]


async def fetch_with_retry(url: str, attempts: int = 3, backoff: float = BACKOFF) -> dict:
    async with httpx.AsyncClient(timeout=10) as client:
        attempt = 1
        while True:
            response = await client.get(url)
            if response.status_code == 503 and attempt < attempts:
                attempt += 1
                await anyio.sleep(backoff)
                continue
            response.raise_for_status()
            return response.json()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    _, iterations, salt, digest = stored.split("$")
    again = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(again.hex(), digest)


class SignUp(BaseModel):
    username: str
    password: str


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/signup")
    async def signup(form: SignUp) -> dict:
        loop = asyncio.get_running_loop()
        password_hash = await loop.run_in_executor(None, hash_password, form.password)
        return {"username": form.username, "password_hash": password_hash}

    return app
