from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.schemas import AuthorRef
from app.text import Text

BODY_MAX_LENGTH = 10_000

Body = Annotated[Text, Field(min_length=1, max_length=BODY_MAX_LENGTH)]


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

    @classmethod
    def from_row(cls, row: Any, *, author_name: str) -> CommentRead:
        """From a Comment just written, whose author is the caller: constructed without validation,
        the values are our own database's."""
        return cls.model_construct(
            id=row.id,
            post_id=row.post_id,
            author_id=row.author_id,
            author=AuthorRef.model_construct(id=row.author_id, name=author_name),
            body=row.body,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


COMMENTS = TypeAdapter(list[CommentRead])
"""A page of comments, validated from dicts (with `author` nested) in one call into pydantic's core."""
