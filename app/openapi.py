"""What the OpenAPI document says about every route, said once: the errors, who may call, the links.

`document_contract(routes)` runs once the app has its routes, before the schema is first built:

- **422** is documented as what the handlers send: `{"detail", "code"}` where `detail` is the list
  of field errors (`validation_error`) or one sentence (`invalid_value`: a bad cursor, `skip` with
  a cursor, a value a column cannot hold). FastAPI's own 422 entry (`HTTPValidationError`, a list
  and no code) is there only when a route declares none, so declaring ours replaces it.
- **400** (a body that cannot be read: not UTF-8, a broken form) and **413** (over MAX_BODY_BYTES)
  on every route that takes a body.
- **Optional sign-in**: a route whose endpoint takes its caller as `Viewer | None` serves anonymous
  callers, so its security requirement gets the empty alternative (`{}`), OpenAPI's "or none".
- **Operation ids** are the endpoints' names (`list_posts`, not FastAPI's `list_posts_posts_get`),
  which generated clients turn into method names; two routes with one name are refused.
- **Links** from each route that creates something to the routes that address what it created, so
  a client (or a stateful test) can follow `POST /posts` to `GET /posts/{post_id}`.

The routes are module-level objects shared by every app built in a process: each step sets its
entries (never appends), so documenting the same routes again changes nothing.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field
from starlette.routing import BaseRoute

from app.errors import ErrorDetail


class FieldError(BaseModel):
    """One problem with the request, as pydantic reports it."""

    type: str = Field(description="The kind of problem, e.g. `missing`, `string_too_long`, `text_nul`.")
    loc: list[str | int] = Field(description="Where: `body`, `query`, `path` or `header`, then the field.")
    msg: str
    # Absent for a password, for a whole body or form, and for raw bytes.
    input: Any = Field(default=None, description="The value that was sent, when it is safe to echo.")
    ctx: dict[str, Any] | None = Field(default=None, description="The constraint that failed, e.g. `max_length`.")


class ValidationErrorDetail(BaseModel):
    """A 422: `validation_error` with the list of field errors, or `invalid_value` with one sentence."""

    detail: list[FieldError] | str
    code: str = Field(description=ErrorDetail.model_fields["code"].description)


_ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorDetail, "The body could not be read (code `bad_request`)"),
    413: (ErrorDetail, "The request body is larger than MAX_BODY_BYTES (code `body_too_large`)"),
    422: (ValidationErrorDetail, "Invalid input: a list of field errors, or one sentence"),
}

# The route that creates something -> {link name: (the route that addresses it, its parameters and
# where the response holds their values)}. Every value is a runtime expression of OpenAPI 3.
_LINKS: dict[tuple[str, str], dict[str, tuple[tuple[str, str], dict[str, str]]]] = {
    ("POST", "/users"): {
        "ReadUser": (("GET", "/users/{user_id}"), {"user_id": "$response.body#/id"}),
        "ReadUserBySlug": (("GET", "/users/by-slug/{slug}"), {"slug": "$response.body#/slug"}),
        "ListUserPosts": (("GET", "/users/{user_id}/posts"), {"user_id": "$response.body#/id"}),
        "UpdateUser": (("PATCH", "/users/{user_id}"), {"user_id": "$response.body#/id"}),
        "DeleteUser": (("DELETE", "/users/{user_id}"), {"user_id": "$response.body#/id"}),
    },
    ("POST", "/posts"): {
        "ReadPost": (("GET", "/posts/{post_id}"), {"post_id": "$response.body#/id"}),
        "UpdatePost": (("PATCH", "/posts/{post_id}"), {"post_id": "$response.body#/id"}),
        "DeletePost": (("DELETE", "/posts/{post_id}"), {"post_id": "$response.body#/id"}),
        "AddView": (("POST", "/posts/{post_id}/views"), {"post_id": "$response.body#/id"}),
        "CreateComment": (("POST", "/posts/{post_id}/comments"), {"post_id": "$response.body#/id"}),
        "ListComments": (("GET", "/posts/{post_id}/comments"), {"post_id": "$response.body#/id"}),
        "ReadAuthor": (("GET", "/users/{user_id}"), {"user_id": "$response.body#/author_id"}),
    },
    ("POST", "/posts/{post_id}/comments"): {
        "UpdateComment": (("PATCH", "/comments/{comment_id}"), {"comment_id": "$response.body#/id"}),
        "DeleteComment": (("DELETE", "/comments/{comment_id}"), {"comment_id": "$response.body#/id"}),
        "ReadCommentedPost": (("GET", "/posts/{post_id}"), {"post_id": "$response.body#/post_id"}),
        "ListSiblingComments": (("GET", "/posts/{post_id}/comments"), {"post_id": "$response.body#/post_id"}),
    },
}


def document_contract(routes: Iterable[BaseRoute]) -> None:
    """Document on every API route the errors, the optional sign-in and the links described above."""
    api_routes = [route for route in routes if isinstance(route, APIRoute)]
    _name_operations(api_routes)
    operation_ids = {(method, route.path): route.unique_id for route in api_routes for method in route.methods or ()}
    for route in api_routes:
        statuses = [422] if _takes_input(route.dependant) or route.body_field else []
        if route.body_field is not None:
            statuses += [400, 413]
        for status in statuses:
            _document_error(route, status)
        if _serves_anonymous_callers(route):
            _set_extra(route, {"security": [{}]})
        for method in route.methods or ():
            links = _LINKS.get((method, route.path))
            if links:
                documented = {name: _link(operation_ids, *target) for name, target in links.items()}
                _set_extra(route, {"responses": {str(route.status_code or 200): {"links": documented}}})


def _name_operations(routes: list[APIRoute]) -> None:
    seen: dict[str, str] = {}
    for route in routes:
        if route.name in seen:
            raise ValueError(f"two routes are named {route.name!r}: {seen[route.name]} and {route.path_format}")
        seen[route.name] = route.path_format
        # unique_id names the route's response models as well as its operation.
        route.operation_id = route.unique_id = route.name


def _document_error(route: APIRoute, status: int) -> None:
    model, description = _ERRORS[status]
    route.responses[status] = {"model": model, "description": description}
    # What FastAPI makes of `responses=` when the route is built; the schema is generated from it.
    route.response_fields[status] = create_model_field(
        name=f"Response_{status}_{route.unique_id}", type_=model, mode="serialization"
    )


def _link(
    operation_ids: dict[tuple[str, str], str], target: tuple[str, str], parameters: dict[str, str]
) -> dict[str, Any]:
    if target not in operation_ids:
        raise LookupError(f"a link points at {' '.join(target)}, which is not a route of this app")
    return {"operationId": operation_ids[target], "parameters": parameters}


def _set_extra(route: APIRoute, extra: dict[str, Any]) -> None:
    """Merge into the route's `openapi_extra`, replacing (not extending) what is set again."""
    route.openapi_extra = _merged(route.openapi_extra or {}, extra)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _takes_input(dependant: Dependant) -> bool:
    """Whether anything the request sends besides a body (path, query, header, cookie) is validated."""
    return any(
        sub.path_params or sub.query_params or sub.header_params or sub.cookie_params for sub in _dependants(dependant)
    )


def _serves_anonymous_callers(route: APIRoute) -> bool:
    """A route with a security scheme whose endpoint takes each caller-bearing argument as optional.

    `OptionalUser` is `Viewer | None`: the endpoint serves anonymous callers (a token that is sent
    must still be valid). `CurrentUser` is `Viewer`: the same scheme, but a caller is required.
    """
    hints = typing.get_type_hints(route.endpoint, include_extras=True)
    secured = [
        sub.name
        for sub in route.dependant.dependencies
        if sub.name and any(_is_security_scheme(inner) for inner in _dependants(sub))
    ]
    return bool(secured) and all(_admits_none(hints.get(name)) for name in secured)


def _is_security_scheme(dependant: Dependant) -> bool:
    return isinstance(dependant.call, SecurityBase)


def _admits_none(hint: Any) -> bool:
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(hint)
    return False
