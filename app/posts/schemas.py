from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from app.database import AnyRow, row_dicts
from app.models.post import TITLE_MAX_LENGTH
from app.pagination import CursorPageParams, SortOrder
from app.params import MAX_ID
from app.schemas import not_nullable

CONTENT_MAX_LENGTH = 100_000

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH)]
Content = Annotated[str, Field(min_length=1, max_length=CONTENT_MAX_LENGTH)]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content


class PostUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    content: Content | None = None

    _not_null = not_nullable("title", "content")


class AuthorRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


def with_author(rows: Sequence[AnyRow]) -> list[dict[str, Any]]:
    """Rows that carry their author's name as `author_name`, as dicts with the `author` nested:
    the shape a page of posts or comments is validated from, in one call into pydantic's core."""
    items = row_dicts(rows)
    for item in items:
        item["author"] = {"id": item["author_id"], "name": item.pop("author_name")}
    return items


class PostRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str
    views: int
    author_id: int
    author: AuthorRef
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any, *, author_name: str | None = None) -> PostRead:
        """From a row (or a Post) that carries its author's name alongside, not a loaded author.

        Constructed without validation: the values come from our own database, through typed
        columns. (A page goes through `from_rows` instead, which is cheaper per row.)
        """
        return cls.model_construct(
            id=row.id,
            title=row.title,
            content=row.content,
            views=row.views,
            author_id=row.author_id,
            author=AuthorRef.model_construct(
                id=row.author_id, name=row.author_name if author_name is None else author_name
            ),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @classmethod
    def from_rows(cls, rows: Sequence[AnyRow]) -> list[PostRead]:
        """A page of rows as `from_row` reads one. Validated rather than constructed: from plain
        dicts that is cheaper (80 µs for 20 posts, where constructing them took 195)."""
        return _POSTS.validate_python(with_author(rows))


_POSTS = TypeAdapter(list[PostRead])


class PostSummary(BaseModel):
    """A post as listed under its author."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    views: int
    created_at: datetime


class PostViews(BaseModel):
    id: int
    views: int


PostOrder = Literal["created_at", "id", "views", "title"]


class PostQuery(CursorPageParams):
    q: str | None = Field(default=None, max_length=TITLE_MAX_LENGTH, description="Case-insensitive part of the title.")
    order_by: PostOrder = "created_at"
    order: SortOrder = Field(default="desc", description="Ties are broken by id in the same direction.")


class PostListParams(PostQuery):
    author_id: int | None = Field(default=None, ge=1, le=MAX_ID)
