"""Application errors and the handlers that render every error as `{"detail": ...}`.

Hierarchy::

    AppError                    status_code, detail, headers
    +-- NotAuthenticated        401  (with WWW-Authenticate: Bearer)
    +-- NotPermitted            403
    +-- NotFound                404  (UserNotFound, ...)
    +-- Conflict                409  (EmailTaken, ...)
    +-- InvalidValue            422  (what validation let through but a column cannot hold)
    +-- ServiceUnavailable      503  (with Retry-After)

Database failures that are nobody's input error -- the server is unreachable, the pool is
exhausted, a connection dropped -- become 503 with Retry-After; anything unexpected is logged
with its traceback and answered with a bare 500, never the traceback itself.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

logger = logging.getLogger(__name__)


class AppError(Exception):
    status_code: ClassVar[int] = 500
    detail: str = "Internal Server Error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
        super().__init__(self.detail)


class NotAuthenticated(AppError):
    status_code = 401
    detail = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidToken(NotAuthenticated):
    """A bearer token that does not stand for a live, active account (any more)."""

    detail = "Invalid or expired token"


class NotPermitted(AppError):
    status_code = 403
    detail = "Not permitted"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflicts with existing data"


class InvalidValue(AppError):
    status_code = 422
    detail = "A value is out of range or too long to be stored"


class ServiceUnavailable(AppError):
    status_code = 503
    detail = "Service unavailable"
    headers = {"Retry-After": "5"}


class DatabaseBusy(ServiceUnavailable):
    detail = "The database is busy: no connection became free in time; retry shortly"
    headers = {"Retry-After": "1"}


class DatabaseUnavailable(ServiceUnavailable):
    detail = "The database is unavailable; retry shortly"


class ErrorDetail(BaseModel):
    detail: str


_RESPONSE_DESCRIPTIONS = {
    401: "Missing or invalid credentials",
    403: "Authenticated, but not allowed to do this",
    404: "Not found",
    409: "Conflicts with existing data",
    503: "Database unavailable or busy (see Retry-After)",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route really returns (FastAPI documents 422 itself)."""
    return {code: {"model": ErrorDetail, "description": _RESPONSE_DESCRIPTIONS[code]} for code in status_codes}


def _render(error: AppError) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _render(exc)


# SQLSTATE classes that mean "the server cannot serve now", whatever class the driver maps them
# to: 08 connection exception, 53 insufficient resources (too many clients), 57P operator
# intervention (shutting down, starting up -- what a restarting PostgreSQL answers).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")
_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def database_error(exc: BaseException) -> AppError | None:
    """The response for a database failure that is not a bug of ours, or None."""
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: nothing was checked in within pool_timeout
        return DatabaseBusy()
    if isinstance(exc, StaleDataError):  # an UPDATE found its row gone: deleted by someone else meanwhile
        return Conflict("It was changed or deleted meanwhile; reload and retry")
    if isinstance(exc, sa_exc.DBAPIError):
        return _driver_error(exc)
    # Drivers raise plain socket errors (refused, reset, timed out) while connecting; SQLAlchemy
    # only wraps the driver's own exception classes.
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror) or (
        isinstance(exc, OSError) and exc.errno in _CONNECTION_ERRNOS
    ):
        return DatabaseUnavailable()
    return None


def _driver_error(exc: sa_exc.DBAPIError) -> AppError | None:
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    if (
        exc.connection_invalidated
        or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
    ):
        return DatabaseUnavailable()
    if isinstance(exc, sa_exc.IntegrityError):
        # A constraint no repository translated into something more specific.
        return Conflict()
    if isinstance(exc, sa_exc.DataError):
        # Input that validation let through but the column cannot hold.
        return InvalidValue()
    return None


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = database_error(exc)
    if mapped is None:
        return await _unexpected(request, exc)
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


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    handlers: dict[Any, Any] = {
        AppError: _app_error,
        RequestValidationError: _validation_error,
        sa_exc.SQLAlchemyError: _database_error,
        OSError: _database_error,
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
