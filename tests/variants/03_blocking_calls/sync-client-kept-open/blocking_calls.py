"""Kata 03 - blocking calls (a learner's version)."""

import asyncio
import hashlib
import hmac
import os

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

client = httpx.Client(timeout=10)  # reuse one client

BACKOFF = 0.2
ITERATIONS = 200_000


async def fetch_json(url: str) -> dict:
    response = client.get(url)
    response.raise_for_status()
    return response.json()


async def fetch_all(urls: list[str]) -> list[dict]:
    return await asyncio.gather(*(fetch_json(url) for url in urls))


async def fetch_with_retry(url: str, attempts: int = 3, backoff: float = BACKOFF) -> dict:
    async with httpx.AsyncClient(timeout=10) as client:
        for attempt in range(1, attempts + 1):
            response = await client.get(url)
            if response.status_code != 503 or attempt == attempts:
                response.raise_for_status()
                return response.json()
            await asyncio.sleep(backoff)


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
        password_hash = await asyncio.to_thread(hash_password, form.password)
        return {"username": form.username, "password_hash": password_hash}

    return app
