"""Shapes shared by several domains."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


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


def _no_default(schema: dict[str, Any]) -> None:
    # The None an omitted field reads as is not a value a client may send: not in the schema.
    schema.pop("default", None)


T = TypeVar("T")

Omittable = Annotated[T | SkipJsonSchema[None], BeforeValidator(_reject_null), Field(json_schema_extra=_no_default)]
"""For PATCH bodies: a field that may be left out (it reads as None: unchanged) but not sent as
null. The JSON schema is the type alone, not nullable and without a default; `X | None = None`
would document `anyOf: [X, null]`, which the API rejects."""


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
