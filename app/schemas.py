"""Response shapes shared by several domains."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


class Deleted(BaseModel):
    deleted: int


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


def not_nullable(*fields: str) -> Any:
    """For PATCH bodies: these fields may be left out (unchanged), but not sent as null."""
    return field_validator(*fields)(_reject_null)
