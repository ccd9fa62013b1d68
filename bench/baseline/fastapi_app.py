"""Baseline: the app's endpoints as a hand-written FastAPI app over raw asyncpg.

What a careful engineer writes for speed: a fixed asyncpg pool, SQL strings, FastAPI validating
the input with the app's constraints, and responses serialised straight from dicts with
`pydantic_core.to_json` (datetimes come out as the app's pydantic models write them).

    SECRET_KEY=... DATABASE_URL=postgresql://... uvicorn bench.baseline.fastapi_app:app --port 8102
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import to_json
from starlette.responses import JSONResponse

from bench.baseline import common
from bench.baseline.common import (
    CONTENT_MAX_LENGTH,
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_ID,
    MAX_LIMIT,
    MAX_SKIP,
    NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    ApiError,
    Author,
    Config,
    Pool,
    PostOrder,
    SortOrder,
    UserOrder,
)


class JSONBytes(Response):
    """A body already serialised by pydantic_core."""

    media_type = "application/json"


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> JSONBytes:
    return JSONBytes(to_json(body), status_code=status_code, headers=headers)


@dataclass(frozen=True, slots=True)
class Context:
    pool: Pool
    config: Config


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Context]]:
    config = Config.from_env()
    pool = await common.create_pool(config)
    try:
        yield {"context": Context(pool, config)}
    finally:
        await pool.close()


def _context(request: Request) -> Context:
    context: Context = request.state.context
    return context


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


app = FastAPI(title="Blog API baseline (FastAPI + asyncpg)", lifespan=lifespan, default_response_class=JSONBytes)
app.add_exception_handler(ApiError, _api_error)

# Parameter types with the app's bounds.
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
PostId = Annotated[int, Path(ge=1, le=MAX_ID)]
Skip = Annotated[int, Query(ge=0, le=MAX_SKIP)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
# `include=total` asks for the count of all matching rows; without it `total` is null.
Include = Annotated[list[Literal["total"]] | None, Query()]
UserInclude = Annotated[list[Literal["posts", "total"]] | None, Query()]

_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH)]
Content = Annotated[str, Field(min_length=1, max_length=CONTENT_MAX_LENGTH)]


async def _current_author(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Author:
    # A dependency, as in the app: a bad token is a 401 before the body is even validated.
    context = _context(request)
    return await common.authenticate(context.pool, context.config.secret, token)


CurrentAuthor = Annotated[Author, Depends(_current_author)]


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    content: Content


@app.post("/auth/token")
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> JSONBytes:
    context = _context(request)
    body = await common.issue_token(context.pool, context.config, username=form.username, password=form.password)
    # Tokens are credentials: no cache may keep them (RFC 6749, section 5.1).
    return _json(body, headers={"Cache-Control": "no-store"})


@app.get("/users")
async def list_users(
    request: Request,
    *,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
    q: Annotated[str | None, Query(max_length=NAME_MAX_LENGTH)] = None,
    order_by: UserOrder = "created_at",
    order: SortOrder = "desc",
    include: UserInclude = None,
) -> JSONBytes:
    include = include or []
    body = await common.list_users(
        _context(request).pool,
        skip=skip,
        limit=limit,
        order_by=order_by,
        order=order,
        q=q,
        with_posts="posts" in include,
        with_total="total" in include,
    )
    return _json(body)


@app.get("/users/{user_id}")
async def read_user(request: Request, user_id: UserId) -> JSONBytes:
    return _json(await common.get_user(_context(request).pool, user_id))


@app.get("/posts")
async def list_posts(
    request: Request,
    *,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    q: Annotated[str | None, Query(max_length=TITLE_MAX_LENGTH)] = None,
    order_by: PostOrder = "created_at",
    order: SortOrder = "desc",
    author_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    include: Include = None,
) -> JSONBytes:
    context = _context(request)
    body = await common.list_posts(
        context.pool,
        context.config.secret,
        skip=skip,
        limit=limit,
        cursor=cursor,
        order_by=order_by,
        order=order,
        author_id=author_id,
        q=q,
        with_total="total" in (include or ()),
    )
    return _json(body)


@app.post("/posts", status_code=status.HTTP_201_CREATED)
async def create_post(request: Request, data: PostCreate, author: CurrentAuthor) -> JSONBytes:
    body = await common.create_post(_context(request).pool, author, title=data.title, content=data.content)
    return _json(body, status_code=status.HTTP_201_CREATED, headers={"Location": f"/posts/{body['id']}"})


@app.post("/posts/{post_id}/views")
async def add_view(request: Request, post_id: PostId) -> JSONBytes:
    return _json(await common.add_view(_context(request).pool, post_id))


@app.get("/posts/{post_id}/comments")
async def list_comments(
    request: Request,
    post_id: PostId,
    *,
    skip: Skip = 0,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    include: Include = None,
) -> JSONBytes:
    context = _context(request)
    body = await common.list_comments(
        context.pool,
        context.config.secret,
        post_id,
        skip=skip,
        limit=limit,
        cursor=cursor,
        with_total="total" in (include or ()),
    )
    return _json(body)
