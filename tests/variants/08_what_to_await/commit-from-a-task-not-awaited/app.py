import asyncio
import hashlib
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from kata_blog.models import Comment, Post
from kata_blog.schemas import CommentResponse

SALT = b"kata-08-salt"
ITERATIONS = 200_000


class PostNotFound(LookupError):
    """No post has the given id."""


class CommentCreate(BaseModel):
    content: str = Field(min_length=1)


class PasswordIn(BaseModel):
    password: str = Field(min_length=1)


def hash_password(password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), SALT, ITERATIONS)


async def add_comment(db: AsyncSession, post_id: int, content: str) -> Comment:
    post = await db.get(Post, post_id)
    if post is None:
        raise PostNotFound(post_id)
    comment = Comment(post_id=post_id, content=content)
    db.add(comment)
    asyncio.ensure_future(db.commit())  # noqa: RUF006 - the wrong variant itself: a commit no one awaits
    await db.refresh(comment)
    return comment


async def comments_of(db: AsyncSession, post_id: int) -> list[Comment]:
    result = await db.scalars(
        select(Comment).where(Comment.post_id == post_id).order_by(Comment.id)
    )
    return list(result)


def create_app(database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # the engine is made on the loop that serves, and closed with it
        app.state.engine = create_async_engine(
            database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
        )
        app.state.sessions = async_sessionmaker(app.state.engine, expire_on_commit=False)
        yield
        await app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    async def get_db(request: Request):
        async with request.app.state.sessions() as db:
            yield db

    @app.get("/slow")
    async def slow_query(seconds: float, db: AsyncSession = Depends(get_db)):
        await db.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
        return {"slept": seconds}

    @app.post("/posts/{post_id}/comments", status_code=201, response_model=CommentResponse)
    async def create_comment(post_id: int, body: CommentCreate, db: AsyncSession = Depends(get_db)):
        try:
            return await add_comment(db, post_id, body.content)
        except PostNotFound:
            raise HTTPException(404, "post not found")

    @app.get("/posts/{post_id}/comments", response_model=list[CommentResponse])
    async def list_comments(post_id: int, db: AsyncSession = Depends(get_db)):
        return await comments_of(db, post_id)

    @app.post("/password-hash")
    async def password_hash(body: PasswordIn):
        digest = await asyncio.to_thread(hash_password, body.password)
        return {"hash": digest.hex()}

    return app
