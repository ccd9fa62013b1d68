from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.posts.schemas import AuthorRef

BODY_MAX_LENGTH = 10_000

Body = Annotated[str, Field(min_length=1, max_length=BODY_MAX_LENGTH)]


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body


class CommentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Body


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    post_id: int
    author_id: int
    author: AuthorRef
    body: str
    created_at: datetime
    updated_at: datetime
