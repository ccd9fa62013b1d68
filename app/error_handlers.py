"""How every error is answered: `{"detail": ...}` with its status, logged once.

Application errors render themselves; database failures go through `app.database_errors`;
anything unexpected is logged once, with its traceback, and answered with a bare 500 -- never
the traceback itself.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.types import ASGIApp, Receive, Scope, Send

from app.database_errors import database_error
from app.errors import AppError

logger = logging.getLogger("app.errors")

_INTERNAL_ERROR = AppError().body()


def _render(error: AppError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _render(exc)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = database_error(exc)
    if mapped is None:
        _log_unexpected(request.scope, exc)
        return JSONResponse(_INTERNAL_ERROR, status_code=500)
    logger.warning("%s %s -> %d: %s", request.method, request.url.path, mapped.status_code, exc)
    return _render(mapped)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for raw in exc.errors():
        error = {key: value for key, value in raw.items() if key != "url"}
        # The client knows what it sent; a password echoed back ends up in proxy and client logs.
        # A whole body or form (an error about no single field) may hold one too.
        if any("password" in str(part) for part in error.get("loc", ())) or isinstance(error.get("input"), dict | list):
            error.pop("input", None)
        errors.append(error)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _log_unexpected(scope: Scope, exc: BaseException) -> None:
    logger.error("unhandled error on %s %s", scope.get("method"), scope.get("path"), exc_info=exc)


class UnexpectedErrors:
    """The last resort: an exception no handler took becomes a logged 500, and goes no further.

    Starlette's own last resort (an `Exception` handler) answers the 500 and then raises the
    exception again, for the server to log: every unexpected error was logged twice.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: a startup failure must reach the server
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:  # noqa: BLE001 -- the point of a last resort
            _log_unexpected(scope, exc)
            # Fails when the response had started already; the server then closes the connection.
            with contextlib.suppress(Exception):
                await JSONResponse(_INTERNAL_ERROR, status_code=500)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    handlers: dict[Any, Any] = {
        AppError: _app_error,
        RequestValidationError: _validation_error,
        sa_exc.SQLAlchemyError: _database_error,
        OSError: _database_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(UnexpectedErrors)
