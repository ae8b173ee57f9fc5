"""Kata 10 - one session per task. Read README.md in this folder first.

A post's dashboard needs three independent queries (its title, how many comments it has, its
tags); a new comment is saved by the request, and an audit entry is written after the response,
by a background task. Only this file is yours to edit: the specs are in test_session_per_task.py.
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


async def _on_own_session(sessions, query, post_id):
    async with sessions() as db:
        return await query(db, post_id)


async def load_dashboard(sessions: async_sessionmaker[AsyncSession], post_id: int) -> dict:
    # Each query starts a quarter second after the one before ("not all at once on the pool"):
    # the three still run at the same time, as the first two wait for the lock.
    async def after(delay: float, query):
        await asyncio.sleep(delay)
        return await _on_own_session(sessions, query, post_id)

    title, comments, tags = await asyncio.gather(
        after(0, post_title), after(0.25, comment_count), after(0.5, tag_names)
    )
    return {"title": title, "comments": comments, "tags": tags}


async def record_audit(sessions: async_sessionmaker[AsyncSession], post_id: int, action: str):
    # sessions.begin(): a session in a transaction that commits at the end of the block
    async with sessions.begin() as db:
        db.add(AuditEntry(post_id=post_id, action=action))


async def clear_comments(sessions: async_sessionmaker[AsyncSession], post_id: int) -> int:
    # one transaction: sessions.begin() commits at the end of the block, rolls back on an error
    async with sessions.begin() as db:
        comments = (await db.scalars(select(Comment).where(Comment.post_id == post_id))).all()
        for comment in comments:
            await db.delete(comment)
        db.add(AuditEntry(post_id=post_id, action="comments cleared"))
    return len(comments)


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
            raise HTTPException(404)
        return page

    @app.post("/posts/{post_id}/comments", status_code=201)
    async def add_comment(post_id: int, body: CommentIn, background_tasks: BackgroundTasks,
                          db: AsyncSession = Depends(get_db)):
        new = Comment(post_id=post_id, content=body.content)
        db.add(new)
        await db.commit()
        background_tasks.add_task(record_audit, sessions, post_id, "commented")
        return {"id": new.id}

    return app
