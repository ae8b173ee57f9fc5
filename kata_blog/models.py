"""The blog models of the course notes (mysite4): Post, Comment, Tag and the PostTag association.

Given to learners: read it, do not edit it. Every relationship uses SQLAlchemy's default
lazy="select" loading, exactly as in the notes: that default is what breaks in async code (LZ1).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)

    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", cascade="all, delete-orphan", order_by="Comment.id"
    )
    post_tags: Mapped[list[PostTag]] = relationship(
        back_populates="post", cascade="all, delete-orphan", order_by="PostTag.tag_id"
    )

    @property
    def tags(self) -> list[Tag]:
        # Reading this walks post_tags and each PostTag.tag: both must be loaded in async code.
        return [post_tag.tag for post_tag in self.post_tags]


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    content: Mapped[str] = mapped_column(Text)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)

    post: Mapped[Post] = relationship(back_populates="comments")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)


class PostTag(Base):
    """The association object between Post and Tag (a row of the post_tags table)."""

    __tablename__ = "post_tags"

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)

    post: Mapped[Post] = relationship(back_populates="post_tags")
    tag: Mapped[Tag] = relationship()
