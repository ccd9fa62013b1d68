"""Which database failures are nobody's bug, and the error each one is answered with.

The server unreachable, refusing, restarting or out of connections, the pool exhausted, a
connection dropped: 503 with Retry-After. A constraint or a value no repository translated into
something more specific: 409 or 422. Anything else is a bug of ours (None here: a 500).
"""

from __future__ import annotations

import errno
import socket

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from app.errors import AppError, Conflict, DatabaseBusy, DatabaseUnavailable, InvalidValue

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
    if isinstance(exc, sa_exc.TimeoutError):  # QueuePool or the pool gate: nothing free within pool_timeout
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


# MySQL/MariaDB error numbers: too many connections, per user, per account resource; lock wait timeout.
_MYSQL_TOO_MANY_CONNECTIONS = {1040, 1203, 1226}
_MYSQL_LOCK_WAIT_TIMEOUT = 1205


def outage_reason(exc: BaseException) -> str:
    """What kind of outage a 503 from `database_error` was, for `db_errors_total{reason}` and the log.

    pool_exhausted: no connection of ours became free in time. timeout: the database took longer
    than DB_COMMAND_TIMEOUT (or DB_POOL_TIMEOUT to connect). too_many_connections: the server
    refused another client. locked: a lock was not granted in time (SQLite's file lock, MySQL's
    lock wait). unavailable: anything else -- refused, dropped, restarting, shutting down.
    """
    if isinstance(exc, sa_exc.TimeoutError):
        return "pool_exhausted"
    causes = list(_chain(exc))
    sqlstate = next((state for cause in causes if (state := getattr(cause, "sqlstate", None))), "") or ""
    mysql_errno = next((cause.args[0] for cause in causes if _is_mysql_error(cause)), None)
    if sqlstate.startswith("53") or mysql_errno in _MYSQL_TOO_MANY_CONNECTIONS:
        return "too_many_connections"
    if any(isinstance(cause, TimeoutError) for cause in causes) or sqlstate == "57014":
        return "timeout"
    text = " ".join(str(cause) for cause in causes[:2]).lower()
    if "database is locked" in text or mysql_errno == _MYSQL_LOCK_WAIT_TIMEOUT or sqlstate == "55P03":
        return "locked"
    return "unavailable"


def _is_mysql_error(exc: BaseException) -> bool:
    # asyncmy's errors carry the server's error number first; an OSError's errno is no such number.
    return type(exc).__module__.startswith("asyncmy") and bool(exc.args) and isinstance(exc.args[0], int)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception, the driver's own under it, and what caused them (bounded: chains may loop)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return seen


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
