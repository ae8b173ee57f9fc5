"""The response and request schemas of the course notes (mysite4.schemas.post).

from_attributes=True lets FastAPI build them from ORM objects: building a PostDetailResponse
reads post.comments and post.tags, which is where lazy loading fails in async code (LZ1, LZ3).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CommentResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    content: str


class TagResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class PostListResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str


class PostDetailResponse(PostListResponse):
    comments: list[CommentResponse]
    tags: list[TagResponse]


class PostCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1)
