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
