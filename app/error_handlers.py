"""How every error is answered: `{"detail": ..., "code": ...}` with its status, logged once.

Application errors render themselves; the framework's own HTTP errors (no such route, wrong
method, an unreadable or oversized body) get the same shape and a code; database failures go
through `app.database_errors` (a 503 is counted by reason and logged a bounded number of times
per outage); anything unexpected is logged once, with its traceback, and answered with a bare
500 that carries the request id -- never the traceback itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.bounded_log import BoundedLog
from app.database_errors import database_error, outage_reason
from app.errors import AppError, one_line
from app.metrics import Metrics
from app.request_id import current_request_id

logger = logging.getLogger("app.errors")

# The framework raises these itself; each gets the code a client can branch on.
_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "not_permitted",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    429: "rate_limited",
    503: "service_unavailable",
}


def _render(error: AppError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _render(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    detail = exc.detail if isinstance(exc.detail, str) else "HTTP error"
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse({"detail": detail, "code": code}, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the methods of the
    first route that matched the path, while GET, PATCH and DELETE of one path are three routes."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _internal_error() -> JSONResponse:
    # The id lets a user quote the failure, and an operator find its one log line.
    return JSONResponse({**AppError().body(), "request_id": current_request_id()}, status_code=500)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    mapped = database_error(exc)
    if mapped is None:
        _log_unexpected(request.scope, exc)
        return _internal_error()
    error = _summary(exc)
    if mapped.status_code == 503:
        reason = outage_reason(exc)
        metrics: Metrics | None = request.app.state.metrics
        if metrics is not None:
            metrics.database_errors.labels(reason).inc()
        outages: BoundedLog = request.app.state.database_outages
        outages.warning(reason, "database unavailable", reason=reason, status=503, error=error)
    else:
        # A constraint or value no repository translated: answered, but worth a look.
        logger.warning("database refused a write", extra={"status": mapped.status_code, "error": error})
    return _render(mapped)


def _summary(exc: BaseException) -> str:
    return one_line(exc)[:300]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(raw) for raw in exc.errors()]
    return JSONResponse({"detail": errors, "code": "validation_error"}, status_code=422)


def _field_error(raw: dict[str, Any]) -> dict[str, Any]:
    """One problem, in a form that always renders: the input that caused it may be anything a
    JSON parser accepts (NaN, 1e999, a lone surrogate), and strict JSON can hold none of them."""
    error: dict[str, Any] = {"type": raw["type"], "loc": [_json_safe(part) for part in raw["loc"]], "msg": raw["msg"]}
    # The client knows what it sent; a password echoed back ends up in proxy and client logs. A
    # whole body or form (an error about no single field) may hold one too, and raw bytes may
    # not be text at all.
    loc_text = " ".join(str(part) for part in raw["loc"])
    if "input" in raw and "password" not in loc_text and not isinstance(raw["input"], dict | list | bytes):
        error["input"] = _json_safe(raw["input"])
    if ctx := raw.get("ctx"):
        error["ctx"] = {str(key): _json_safe(value) for key, value in ctx.items()}
    return error


def _json_safe(value: object) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        # A lone surrogate cannot be encoded as UTF-8: show it escaped, as it was sent.
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict):
        return {str(_json_safe(key)): _json_safe(item) for key, item in value.items()}
    return _json_safe(str(value))  # an exception in ctx, a Decimal, a date: its text


def _log_unexpected(scope: Scope, exc: BaseException) -> None:
    fields = {"method": scope.get("method"), "path": scope.get("path")}
    logger.error("unhandled error", exc_info=exc, extra=fields)


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
                await _internal_error()(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.state.database_outages = BoundedLog(logger)
    handlers: dict[Any, Any] = {
        AppError: _app_error,
        HTTPException: _http_error,
        RequestValidationError: _validation_error,
        sa_exc.SQLAlchemyError: _database_error,
        OSError: _database_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(UnexpectedErrors)
