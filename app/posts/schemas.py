from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from app.models.post import TITLE_MAX_LENGTH
from app.pagination import CursorPageParams, SortOrder
from app.params import MAX_ID
from app.schemas import AuthorRef, Omittable
from app.text import CLEAN, DOCUMENT_NOT_BLANK, Text

CONTENT_MAX_LENGTH = 100_000

Title = Annotated[
    # CLEAN after the constraints still runs first (a before-validator wraps what precedes it),
    # and this way round pydantic strips before it checks the length: on `Text`, "   " passed.
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH), CLEAN, DOCUMENT_NOT_BLANK
]
Content = Annotated[Text, Field(min_length=1, max_length=CONTENT_MAX_LENGTH)]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content


class PostUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    title: Omittable[Title] = None
    content: Omittable[Content] = None


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


POSTS = TypeAdapter(list[PostRead])
"""A page of posts, validated from dicts (with `author` nested) in one call into pydantic's core."""


class PostViews(BaseModel):
    id: int
    views: int


PostOrder = Literal["created_at", "id", "views", "title"]


class PostQuery(CursorPageParams):
    q: Text | None = Field(default=None, max_length=TITLE_MAX_LENGTH, description="Case-insensitive part of the title.")
    order_by: PostOrder = "created_at"
    order: SortOrder = Field(default="desc", description="Ties are broken by id in the same direction.")


class PostListParams(PostQuery):
    author_id: int | None = Field(default=None, ge=1, le=MAX_ID)
