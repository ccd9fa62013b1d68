"""Application errors and the handlers that render every error as `{"detail": ...}`.

Hierarchy::

    AppError                    status_code, detail, headers
    +-- NotAuthenticated        401  (with WWW-Authenticate: Bearer)
    +-- NotPermitted            403
    +-- NotFound                404  (UserNotFound, ...)
    +-- Conflict                409  (EmailTaken, ...)
    +-- ServiceUnavailable      503  (with Retry-After)

Database failures that are nobody's input error -- the server is unreachable, the pool is
exhausted, a connection dropped -- become 503 with Retry-After; anything unexpected is logged
with its traceback and answered with a bare 500, never the traceback itself.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc

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


class NotPermitted(AppError):
    status_code = 403
    detail = "Not permitted"


class NotFound(AppError):
    status_code = 404
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    detail = "Conflicts with existing data"


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


def database_error(exc: BaseException) -> AppError | None:
    """The 503 for a database failure that is not the client's fault, or None."""
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool: nothing was checked in within pool_timeout
        return DatabaseBusy()
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    ):
        return DatabaseUnavailable()
    # Drivers raise plain socket errors (refused, reset, timed out -- TimeoutError is an OSError)
    # while connecting; SQLAlchemy only wraps the driver's own exception classes.
    if isinstance(exc, OSError):
        return DatabaseUnavailable()
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
        if any("password" in str(part) for part in error.get("loc", ())):
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
