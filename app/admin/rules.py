"""The API's validation, applied to the admin's edit forms.

A field the admin may edit is checked by the API's own pydantic schema (UserUpdate, PostUpdate,
CommentUpdate), so the two ways of changing a row cannot drift apart. Each rule is checked twice:
as a form validator, so sqladmin shows the message under the field, and in `on_model_change`,
which also stores the value as the API would (a name with its surrounding spaces trimmed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from wtforms.validators import ValidationError as FormError  # type: ignore[import-untyped]

FormValidator = Callable[[Any, Any], None]


class RuleViolation(ValueError):
    """Input the API would refuse; sqladmin shows its message above the form and writes nothing."""


def _message(exc: ValidationError) -> str:
    return "; ".join(error["msg"] for error in exc.errors())


def checked(schema: type[BaseModel], data: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of `data` among `fields`, as `schema` validates and normalises them."""
    values = {name: data[name] for name in fields if name in data}
    try:
        model = schema.model_validate(values)
    except ValidationError as exc:
        problems = (f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
        raise RuleViolation("; ".join(problems)) from None
    return model.model_dump(include=set(values))


def field_rule(schema: type[BaseModel], name: str) -> FormValidator:
    """A form validator for one field: the schema's verdict on that field alone."""

    def validate(form: Any, field: Any) -> None:
        try:
            schema.model_validate({name: field.data})
        except ValidationError as exc:
            raise FormError(_message(exc)) from None

    return validate


class FormArgs(dict[str, dict[str, Any]]):
    """sqladmin's `form_args`, handing out a fresh copy on every lookup.

    sqladmin appends its own validators (Length, InputRequired, ...) to the list it finds here,
    every time it builds a form -- that is, on every edit request: with a plain dict, the list
    would grow by one validator per request for the life of the process.
    """

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            return default
        args = self[key]
        return {**args, "validators": list(args.get("validators", ()))}


def api_form_args(schema: type[BaseModel], *fields: str) -> FormArgs:
    """`form_args` that validate each of `fields` with `schema`."""
    return FormArgs({name: {"validators": [field_rule(schema, name)]} for name in fields})
