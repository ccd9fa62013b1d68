"""Application errors: each carries the status code and detail it is answered with.

Hierarchy::

    AppError                    status_code, detail, headers
    +-- NotAuthenticated        401  (with WWW-Authenticate: Bearer)
    +-- NotPermitted            403
    +-- NotFound                404  (UserNotFound, ...)
    +-- Conflict                409  (EmailTaken, ...)
    +-- InvalidValue            422  (what validation let through but a column cannot hold)
    +-- ServiceUnavailable      503  (with Retry-After)

Which database failures become which of these is `app.database_errors`; how every error is
rendered is `app.error_handlers`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel


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
