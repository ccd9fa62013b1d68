"""Response shapes shared by several domains."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, field_validator


class ModelResponse(Response):
    """A model serialised once, by pydantic's core, straight to the body's bytes.

    The busiest handlers return this instead of the model. FastAPI would otherwise validate the
    returned model against `response_model` a second time before serialising it: work done twice
    for models built from our own typed rows, which showed in the profile of every read. The
    handler still declares `response_model`, so OpenAPI documents the shape as before.
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(model.__pydantic_serializer__.to_json(model), status_code, headers)


class Deleted(BaseModel):
    deleted: int


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("may be omitted, but not null")
    return value


def not_nullable(*fields: str) -> Any:
    """For PATCH bodies: these fields may be left out (unchanged), but not sent as null."""
    return field_validator(*fields)(_reject_null)


class AuthorRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class PostSummary(BaseModel):
    """A post as listed under its author."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    views: int
    created_at: datetime
