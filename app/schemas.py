"""Response shapes shared by several domains."""

from __future__ import annotations

from pydantic import BaseModel


class Deleted(BaseModel):
    deleted: int
