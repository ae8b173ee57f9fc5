"""Kata 08 - what to await. Read README.md in this folder first.

Write the functions and finish create_app below; `pytest katas/08_what_to_await` tells you, rule
by rule, what is still wrong. Only this file is yours to edit: the specs are in
test_what_to_await.py.
"""

import asyncio
import hashlib

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Comment, Post
from kata_blog.schemas import CommentResponse

SALT = b"kata-08-salt"
ITERATIONS = 200_000  # about 0.1 s of CPU per hash (measured on the course's 2-core machines)


class PostNotFound(LookupError):
    """No post has the given id."""


class CommentCreate(BaseModel):
    content: str = Field(min_length=1)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1)


def hash_password(password: str) -> bytes:
    """Given: PBKDF2 over the password, pure CPU work and no I/O. Use it; do not change it."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, ITERATIONS)


# --- AE5: what to await with an AsyncSession ---------------------------------------------------


async def add_comment(db: AsyncSession, post_id: int, content: str) -> Comment:
    """Add a comment to post `post_id`, commit it, and return it loaded again from the database.

    The session `db` expires every object at commit (expire_on_commit=True, the default): the
    returned comment must still be readable (comment.id, comment.content) without a query.
    Raise PostNotFound, and write nothing, when the post does not exist.
    """
    # get may query the database: awaited.
    if await db.get(Post, post_id) is None:
        raise PostNotFound(post_id)
    comment = Comment(post_id=post_id, content=content)
    # add only stages the object in the session: no I/O, a plain call.
    db.add(comment)
    # commit sends the INSERT and the COMMIT: awaited, or nothing is written.
    await db.commit()
    # commit expired the comment; refresh reloads it with a query, so it is awaited too.
    await db.refresh(comment)
    return comment


async def comments_of(db: AsyncSession, post_id: int) -> list[Comment]:
    """The comments of post `post_id`, oldest first (by id)."""
    statement = select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)
    # scalars runs the query: awaited. .all() then only reads rows already fetched.
    return list((await db.scalars(statement)).all())


# --- SM1: the whole stack switched -------------------------------------------------------------


def create_app(database_url: str) -> FastAPI:
    """The blog API on `database_url` (postgresql://..., as DATABASE_URL holds it).

    Keep the engine on app.state.engine: whoever stops the app disposes it (the specs do).
    """
    # The whole stack at once: asyncpg, create_async_engine, async_sessionmaker, AsyncSession.
    engine = create_async_engine(make_url(database_url).set(drivername="postgresql+asyncpg"))
    new_session = async_sessionmaker(engine, expire_on_commit=False)
    app = FastAPI()
    app.state.engine = engine

    async def get_db():
        async with new_session() as db:
            yield db

    @app.get("/slow")
    async def slow_query(seconds: float, db: AsyncSession = Depends(get_db)):
        # Awaited: while the database sleeps, the loop serves the other requests.
        await db.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
        return {"slept": seconds}

    @app.post("/posts/{post_id}/comments", status_code=201, response_model=CommentResponse)
    async def create_comment(
        post_id: int, body: CommentCreate, db: AsyncSession = Depends(get_db)
    ):
        try:
            return await add_comment(db, post_id, body.content)
        except PostNotFound:
            raise HTTPException(status_code=404, detail=f"post {post_id} not found") from None

    @app.get("/posts/{post_id}/comments", response_model=list[CommentResponse])
    async def list_comments(post_id: int, db: AsyncSession = Depends(get_db)):
        return await comments_of(db, post_id)

    @app.post("/password-hash")
    async def password_hash(body: PasswordIn):
        # No I/O, so nothing in it to await; but it is long CPU work: run it on a worker thread.
        # asyncio.to_thread uses the loop's default executor (min(32, cpus + 4) threads), not
        # FastAPI's 40-token limiter; the loop stays free because pbkdf2_hmac releases the GIL
        # (a pure-Python loop would not: that belongs in a ProcessPoolExecutor).
        digest = await asyncio.to_thread(hash_password, body.password)
        return {"hash": digest.hex()}

    return app
