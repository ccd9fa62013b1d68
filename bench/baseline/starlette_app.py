"""Baseline "ceiling": the app's endpoints on bare Starlette over raw asyncpg.

The same SQL and JSON as the FastAPI baseline, without FastAPI's dependency resolution and
validation: parameters are checked only as far as the database needs (types, bounds, lengths).
Errors are `{"detail": "..."}`; a bad parameter is a 422 with a one-line detail.

    SECRET_KEY=... DATABASE_URL=postgresql://... uvicorn bench.baseline.starlette_app:app --port 8103
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json, to_json
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.baseline import common
from bench.baseline.common import (
    CONTENT_MAX_LENGTH,
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_ID,
    MAX_LIMIT,
    MAX_SKIP,
    NAME_MAX_LENGTH,
    POST_ORDERS,
    SORT_ORDERS,
    TITLE_MAX_LENGTH,
    USER_ORDERS,
    ApiError,
    Config,
    Pool,
)


@dataclass(frozen=True, slots=True)
class Context:
    pool: Pool
    config: Config


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Context]]:
    config = Config.from_env()
    pool = await common.create_pool(config)
    try:
        yield {"context": Context(pool, config)}
    finally:
        await pool.close()


def _context(request: Request) -> Context:
    context: Context = request.state.context
    return context


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(body), status_code=status_code, headers=headers, media_type="application/json")


# --- parameters ----------------------------------------------------------------------------------


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(422, f"{name}: {message}")


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, "not an integer") from None
    if not low <= value <= high:
        raise _invalid(name, f"must be {low}-{high}")
    return value


def _optional_int(params: QueryParams, name: str) -> int | None:
    return None if params.get(name) is None else _int(params, name, 0, 1, MAX_ID)


def _text(params: QueryParams, name: str, max_length: int) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > max_length:
        raise _invalid(name, f"at most {max_length} characters")
    return value


def _choice(params: QueryParams, name: str, choices: Collection[str], default: str) -> str:
    value = params.get(name, default)
    if value not in choices:
        raise _invalid(name, f"one of {', '.join(choices)}")
    return value


def _path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    # The route's int convertor takes any digits; the columns are 32-bit.
    if not 1 <= value <= MAX_ID:
        raise _invalid(name, f"must be 1-{MAX_ID}")
    return value


def _includes(params: QueryParams, name: str) -> bool:
    return name in params.getlist("include")


# --- endpoints -----------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    async with request.form() as form:
        username, password = form.get("username"), form.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiError(422, "username and password are required form fields")
    context = _context(request)
    body = await common.issue_token(context.pool, context.config, username=username, password=password)
    # Tokens are credentials: no cache may keep them (RFC 6749, section 5.1).
    return _json(body, headers={"Cache-Control": "no-store"})


async def list_users(request: Request) -> Response:
    params = request.query_params
    body = await common.list_users(
        _context(request).pool,
        skip=_int(params, "skip", 0, 0, MAX_SKIP),
        limit=_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        order_by=_choice(params, "order_by", USER_ORDERS, "created_at"),
        order=_choice(params, "order", SORT_ORDERS, "desc"),
        q=_text(params, "q", NAME_MAX_LENGTH),
        with_posts=_includes(params, "posts"),
        with_total=_includes(params, "total"),
    )
    return _json(body)


async def read_user(request: Request) -> Response:
    return _json(await common.get_user(_context(request).pool, _path_id(request, "user_id")))


async def list_posts(request: Request) -> Response:
    params = request.query_params
    context = _context(request)
    body = await common.list_posts(
        context.pool,
        context.config.secret,
        skip=_int(params, "skip", 0, 0, MAX_SKIP),
        limit=_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        cursor=_text(params, "cursor", MAX_CURSOR_LENGTH),
        order_by=_choice(params, "order_by", POST_ORDERS, "created_at"),
        order=_choice(params, "order", SORT_ORDERS, "desc"),
        author_id=_optional_int(params, "author_id"),
        q=_text(params, "q", TITLE_MAX_LENGTH),
        with_total=_includes(params, "total"),
    )
    return _json(body)


def _post_fields(raw: bytes) -> tuple[str, str]:
    try:
        data = from_json(raw)
    except ValueError:
        raise ApiError(422, "body: not JSON") from None
    if not isinstance(data, dict) or set(data) != {"title", "content"}:
        raise ApiError(422, "body: an object with exactly title and content")
    title, content = data["title"], data["content"]
    if not isinstance(title, str) or not isinstance(content, str):
        raise ApiError(422, "body: title and content are strings")
    title = title.strip()
    if not 1 <= len(title) <= TITLE_MAX_LENGTH:
        raise _invalid("title", f"1-{TITLE_MAX_LENGTH} characters")
    if not 1 <= len(content) <= CONTENT_MAX_LENGTH:
        raise _invalid("content", f"1-{CONTENT_MAX_LENGTH} characters")
    return title, content


async def create_post(request: Request) -> Response:
    context = _context(request)
    # Authentication first, as in the app: a bad token is a 401 whatever the body.
    token = common.bearer_token(request.headers.get("authorization"))
    author = await common.authenticate(context.pool, context.config.secret, token)
    title, content = _post_fields(await request.body())
    body = await common.create_post(context.pool, author, title=title, content=content)
    return _json(body, status_code=201, headers={"Location": f"/posts/{body['id']}"})


async def add_view(request: Request) -> Response:
    return _json(await common.add_view(_context(request).pool, _path_id(request, "post_id")))


async def list_comments(request: Request) -> Response:
    params = request.query_params
    context = _context(request)
    body = await common.list_comments(
        context.pool,
        context.config.secret,
        _path_id(request, "post_id"),
        skip=_int(params, "skip", 0, 0, MAX_SKIP),
        limit=_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        cursor=_text(params, "cursor", MAX_CURSOR_LENGTH),
        with_total=_includes(params, "total"),
    )
    return _json(body)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


app = Starlette(
    routes=[
        Route("/auth/token", login, methods=["POST"]),
        Route("/users", list_users, methods=["GET"]),
        Route("/users/{user_id:int}", read_user, methods=["GET"]),
        Route("/posts", list_posts, methods=["GET"]),
        Route("/posts", create_post, methods=["POST"]),
        Route("/posts/{post_id:int}/views", add_view, methods=["POST"]),
        Route("/posts/{post_id:int}/comments", list_comments, methods=["GET"]),
    ],
    exception_handlers={ApiError: _api_error},
    lifespan=lifespan,
)
