"""Kata 10 - one session per task. Read README.md in this folder first.

A post's dashboard needs three independent queries (its title, how many comments it has, its
tags); clearing a post's comments is two writes that must succeed or fail together; a new comment
is saved by the request, and an audit entry is written after the response, by a background task. Only this file is yours to edit: the specs are in test_session_per_task.py.
`pytest katas/10_session_per_task` tells you, rule by rule, what is still wrong.

`sessions` is the app's session factory (an async_sessionmaker): `sessions()` is a new
AsyncSession, and each session takes its own connection from the engine's pool.
"""

import asyncio

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kata_blog.models import Comment, Post, PostTag, Tag


class AuditBase(DeclarativeBase):
    pass


class AuditEntry(AuditBase):
    """One line of the audit log (given: the specs create its table)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int]
    action: Mapped[str] = mapped_column(String(50))


# --- given: the three queries of the dashboard; each runs on the session it is handed ---------


async def post_title(db: AsyncSession, post_id: int) -> str | None:
    return await db.scalar(select(Post.title).where(Post.id == post_id))


async def comment_count(db: AsyncSession, post_id: int) -> int:
    query = select(func.count()).select_from(Comment).where(Comment.post_id == post_id)
    return await db.scalar(query)


async def tag_names(db: AsyncSession, post_id: int) -> list[str]:
    query = (
        select(Tag.name)
        .join(PostTag, PostTag.tag_id == Tag.id)
        .where(PostTag.post_id == post_id)
        .order_by(Tag.name)
    )
    return list(await db.scalars(query))


# --- yours --------------------------------------------------------------------------------------


async def load_dashboard(sessions: async_sessionmaker[AsyncSession], post_id: int) -> dict:
    """{"title": ..., "comments": ..., "tags": [...]} of one post, its three queries at once."""

    async def run(query):
        # A session is one unit of work for one task: each concurrent query gets its own, so
        # each runs on its own pool connection, and `async with` gives that connection back.
        async with sessions() as db:
            return await query(db, post_id)

    title, comments, tags = await asyncio.gather(
        run(post_title), run(comment_count), run(tag_names)
    )
    return {"title": title, "comments": comments, "tags": tags}


async def clear_comments(sessions: async_sessionmaker[AsyncSession], post_id: int) -> int:
    """Delete every comment of a post and write one audit entry "comments cleared", as one
    transaction: both are saved, or (when either fails) neither. Returns how many were deleted."""
    # Two writes that succeed or fail together are one transaction: one session, its statements
    # awaited one after another, one commit at the end. If either write fails, the commit is never
    # reached and `async with` rolls the other back. Concurrency has no place here.
    async with sessions() as db:
        deleted = await db.execute(delete(Comment).where(Comment.post_id == post_id))
        db.add(AuditEntry(post_id=post_id, action="comments cleared"))
        await db.commit()
    return deleted.rowcount


async def record_audit(sessions: async_sessionmaker[AsyncSession], post_id: int, action: str):
    """The background task: one audit entry, committed."""
    # It runs after the response, when the request's session is done with: it opens its own.
    async with sessions() as db:
        db.add(AuditEntry(post_id=post_id, action=action))
        await db.commit()


class CommentIn(BaseModel):
    content: str


def create_app(sessions: async_sessionmaker[AsyncSession]) -> FastAPI:
    app = FastAPI()

    async def get_db():
        async with sessions() as db:
            yield db

    @app.get("/posts/{post_id}/dashboard")
    async def dashboard(post_id: int):
        page = await load_dashboard(sessions, post_id)
        if page["title"] is None:
            raise HTTPException(status_code=404, detail=f"no post {post_id}")
        return page

    @app.post("/posts/{post_id}/comments", status_code=201)
    async def add_comment(
        post_id: int,
        body: CommentIn,
        tasks: BackgroundTasks,
        db: AsyncSession = Depends(get_db),
    ):
        comment = Comment(post_id=post_id, content=body.content)
        db.add(comment)
        await db.commit()
        # The task gets the factory, not the request's session `db`.
        tasks.add_task(record_audit, sessions, post_id, "commented")
        return {"id": comment.id}

    return app
