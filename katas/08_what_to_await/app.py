"""Kata 08 - what to await. Read README.md in this folder first.

Write the functions and finish create_app below; `pytest katas/08_what_to_await` tells you, rule
by rule, what is still wrong. Only this file is yours to edit: the specs are in
test_what_to_await.py.
"""

import asyncio
import hashlib

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

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
    # TODO: look the post up (db.get), stage a Comment (db.add), commit, refresh, return it.
    # Which of these talk to the database, and so must be awaited?
    raise NotImplementedError("add_comment")


async def comments_of(db: AsyncSession, post_id: int) -> list[Comment]:
    """The comments of post `post_id`, oldest first (by id)."""
    # TODO: select the post's comments ordered by id, with db.scalars.
    raise NotImplementedError("comments_of")


# --- SM1: the whole stack switched -------------------------------------------------------------


def create_app(database_url: str) -> FastAPI:
    """The blog API on `database_url` (postgresql://..., as DATABASE_URL holds it).

    Keep the engine on app.state.engine: whoever stops the app disposes it (the specs do).
    """
    # TODO: half a switch. The endpoints are async def, but everything under them is still the
    # sync stack: psycopg2, create_engine, sessionmaker, Session, queries without await.
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    new_session = sessionmaker(engine)
    app = FastAPI()
    app.state.engine = engine

    def get_db():
        with new_session() as db:
            yield db

    @app.get("/slow")
    async def slow_query(seconds: float, db: Session = Depends(get_db)):
        # Stands for any slow query: the database works for `seconds`.
        db.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
        return {"slept": seconds}

    @app.post("/posts/{post_id}/comments", status_code=201, response_model=CommentResponse)
    async def create_comment(post_id: int, body: CommentCreate, db: Session = Depends(get_db)):
        # TODO: add_comment(...) on an AsyncSession; a missing post is a 404, not a 500.
        raise NotImplementedError("create_comment")

    @app.get("/posts/{post_id}/comments", response_model=list[CommentResponse])
    async def list_comments(post_id: int, db: Session = Depends(get_db)):
        # TODO: comments_of(...) on an AsyncSession.
        raise NotImplementedError("list_comments")

    @app.post("/password-hash")
    async def password_hash(body: PasswordIn):
        # TODO: no I/O here, so nothing to await, as the notes say. Is that the whole story?
        return {"hash": hash_password(body.password).hex()}

    return app
