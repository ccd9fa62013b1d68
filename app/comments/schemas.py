from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.database import AnyRow
from app.posts.schemas import AuthorRef, with_author

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

    @classmethod
    def from_row(cls, row: Any, *, author_name: str | None = None) -> CommentRead:
        """From a row (or a Comment) that carries its author's name alongside, not a loaded author.
        Constructed without validation, like PostRead.from_row: the values are our own database's."""
        return cls.model_construct(
            id=row.id,
            post_id=row.post_id,
            author_id=row.author_id,
            author=AuthorRef.model_construct(
                id=row.author_id, name=row.author_name if author_name is None else author_name
            ),
            body=row.body,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    def from_rows(cls, rows: Sequence[AnyRow]) -> list[CommentRead]:
        """A page of rows as `from_row` reads one, validated in one call like PostRead.from_rows."""
        return _COMMENTS.validate_python(with_author(rows))


_COMMENTS = TypeAdapter(list[CommentRead])
