"""Shapes shared by several domains, and what their JSON schemas say that pydantic cannot infer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema


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

# app.text's rule as JSON-schema patterns, which the schema cannot infer from a validator: no
# U+0000 (a lone surrogate is not Unicode text, which a JSON-schema string already means); and for
# text whose surrounding whitespace is stripped before its length is checked, at least one
# character that is not whitespace -- Unicode's White_Space, the set pydantic strips.
_WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_PATTERN = r"^[^\x00]*$"
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{_WHITE_SPACE}][^\x00]*$"


class TextRuleSchema:
    """Annotated metadata that documents the text rule on a text type; validation stays CLEAN's."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        # A pattern of the type's own (a domain's) says more, and excludes U+0000 already.
        handler.resolve_ref_schema(schema).setdefault("pattern", self.pattern)
        return schema


DOCUMENT_TEXT_RULE = TextRuleSchema(NO_NUL_PATTERN)
DOCUMENT_NOT_BLANK = TextRuleSchema(NOT_BLANK_PATTERN)

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
