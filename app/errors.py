"""Application errors: each carries the status code, stable code and detail it is answered with.

Hierarchy::

    AppError                    status_code, code, detail, headers
    +-- NotAuthenticated        401  (with WWW-Authenticate: Bearer)
    +-- NotPermitted            403
    +-- NotFound                404  (UserNotFound, ...)
    +-- Conflict                409  (EmailTaken, ...)
    +-- InvalidValue            422  (what validation let through but a column cannot hold)
    +-- RateLimited             429  (with Retry-After)
    +-- ServiceUnavailable      503  (with Retry-After)

`code` is for programs, `detail` for people: clients branch on the code, which never changes
for a given condition, while the wording of the detail may. Every code is in `ERROR_CODES`.

Which database failures become which of these is `app.database_errors`; how every error is
rendered is `app.error_handlers`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


def one_line(exc: BaseException) -> str:
    """`Class: first line of its message`: drivers' messages go on with the statement, hints, context."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class AppError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    detail: str = "Internal Server Error"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        if detail is not None:
            self.detail = detail
        if headers is not None:
            self.headers = {**(self.headers or {}), **headers}
        super().__init__(self.detail)

    def body(self) -> dict[str, str]:
        return {"detail": self.detail, "code": self.code}


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"
    detail = "Not authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class InvalidToken(NotAuthenticated):
    """A bearer token that does not stand for a live, active account (any more)."""

    code = "invalid_token"
    detail = "Invalid or expired token"


class NotPermitted(AppError):
    status_code = 403
    code = "not_permitted"
    detail = "Not permitted"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    detail = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    detail = "Conflicts with existing data"


class InvalidValue(AppError):
    status_code = 422
    code = "invalid_value"
    detail = "A value is out of range or too long to be stored"


class RateLimited(AppError):
    """Too many attempts: the caller is told when to try again, in seconds."""

    status_code = 429
    code = "rate_limited"
    detail = "Too many attempts; retry later"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    detail = "Service unavailable"
    headers = {"Retry-After": "5"}


class DatabaseBusy(ServiceUnavailable):
    code = "database_busy"
    detail = "The database is busy: no connection became free in time; retry shortly"
    headers = {"Retry-After": "1"}


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    detail = "The database is unavailable; retry shortly"


# Every code an error body may carry, with what it means: the OpenAPI description and the
# README's table are made from this, and a test checks each AppError's code is listed.
ERROR_CODES = {
    "bad_request": "The body could not be read (not UTF-8, not the declared content type).",
    "bad_write_position": "X-Write-Position is not a WAL position as this service sends it (0/16B3748).",
    "not_authenticated": "No credentials were sent.",
    "invalid_token": "The bearer token is malformed, expired, revoked, or its account is gone.",
    "invalid_credentials": "Wrong email or password (or a deactivated account).",
    "not_permitted": "Authenticated, but not allowed to do this.",
    "not_found": "No such resource (or route).",
    "method_not_allowed": "The route exists, but not with this method; see Allow.",
    "conflict": "The request conflicts with existing data, or with a concurrent change.",
    "email_taken": "A user with this email already exists.",
    "body_too_large": "The request body is larger than MAX_BODY_BYTES.",
    "validation_error": "The request does not match the schema; `detail` lists each problem.",
    "invalid_value": "A value passed validation but is out of range for what it names.",
    "rate_limited": "Too many attempts; retry after Retry-After seconds.",
    "http_error": "Another HTTP error; the status code says which.",
    "internal_error": "A bug of ours; it is logged.",
    "service_unavailable": "The service cannot answer now; retry after Retry-After seconds.",
    "database_busy": "No database connection became free in time; retry after Retry-After seconds.",
    "database_unavailable": "The database is unreachable or not answering; retry after Retry-After seconds.",
}


class ErrorDetail(BaseModel):
    detail: str
    code: str = Field(description="Stable, for programs: " + "; ".join(f"`{c}`: {m}" for c, m in ERROR_CODES.items()))


_RESPONSE_DESCRIPTIONS = {
    401: "Missing or invalid credentials",
    403: "Authenticated, but not allowed to do this",
    404: "Not found",
    409: "Conflicts with existing data",
    413: "The request body is larger than MAX_BODY_BYTES",
    429: "Too many attempts (see Retry-After)",
    503: "Database unavailable or busy (see Retry-After)",
}


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors a route really returns (FastAPI documents 422 itself)."""
    return {code: {"model": ErrorDetail, "description": _RESPONSE_DESCRIPTIONS[code]} for code in status_codes}
