"""Offset pagination: the query parameters every list endpoint shares and the page envelope."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

MAX_LIMIT = 100
# Far beyond any real page; keeps OFFSET inside the range every database accepts.
MAX_SKIP = 2**31 - 1

SortOrder = Literal["asc", "desc"]

T = TypeVar("T")


class PageParams(BaseModel):
    skip: int = Field(default=0, ge=0, le=MAX_SKIP, description="Rows to skip.")
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT, description="Page size, 1-100.")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    skip: int
    limit: int
