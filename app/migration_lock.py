"""One migrator at a time, across processes and machines.

Several workers or replicas starting together would otherwise all run `upgrade head`: the first
creates a table, the others fail on it (or, on MariaDB, whose DDL is not transactional, leave a
half-applied revision). The lock lives where the data does:

- PostgreSQL: a session advisory lock;
- MariaDB/MySQL: GET_LOCK;
- SQLite: an exclusive file lock on `<database file>.lock`, beside it.

Waiting is bounded (MIGRATION_LOCK_TIMEOUT): a stuck migrator makes the others fail with a message
saying so, instead of hanging a deploy.
"""

from __future__ import annotations

import fcntl
import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

logger = logging.getLogger(__name__)

LOCK_NAME = "blogapi-migrations"
# pg_advisory_lock takes a bigint: a stable number derived from the name.
_PG_LOCK_KEY = zlib.crc32(LOCK_NAME.encode())
_POLL_SECONDS = 0.2


class MigrationLockTimeout(RuntimeError):
    def __init__(self, timeout: float) -> None:
        super().__init__(
            f"another process held the migration lock for more than {timeout:g} s "
            "(MIGRATION_LOCK_TIMEOUT); is a migration stuck?"
        )


@contextmanager
def migration_lock(connection: Connection, *, timeout: float) -> Iterator[None]:
    """Hold the lock for the body; the connection is left outside any transaction."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        with _file_lock(Path(connection.engine.url.database or ""), timeout=timeout):
            yield
        return
    if dialect == "postgresql":
        _poll(connection, text("SELECT pg_try_advisory_lock(:key)").bindparams(key=_PG_LOCK_KEY), timeout)
        release = text("SELECT pg_advisory_unlock(:key)").bindparams(key=_PG_LOCK_KEY)
    else:
        name = mariadb_lock_name(connection.engine.url.database)
        acquired = connection.scalar(text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout})
        connection.commit()
        if acquired != 1:
            raise MigrationLockTimeout(timeout)
        release = text("SELECT RELEASE_LOCK(:name)").bindparams(name=name)
    try:
        yield
    finally:
        # Session-level locks outlive transactions: release explicitly (closing the connection
        # would, too -- so a failed release must not hide the migration's own error).
        try:
            if connection.in_transaction():
                connection.rollback()
            connection.execute(release)
            connection.commit()
        except Exception:
            logger.warning("could not release the migration lock; it goes with the connection", exc_info=True)


def mariadb_lock_name(database: str | None) -> str:
    """GET_LOCK names are server-wide: the database's name keeps staging and production (or
    parallel test databases) on one server from waiting for each other. 64 characters at most."""
    name = f"{LOCK_NAME}:{database}"
    return name if len(name) <= 64 else f"{LOCK_NAME}:{zlib.crc32(name.encode()):08x}"


def _poll(connection: Connection, attempt: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        acquired = connection.scalar(attempt)  # type: ignore[call-overload]
        # The lock is the session's, not the transaction's: end the implicit transaction so
        # the migration starts with a clean connection.
        connection.commit()
        if acquired:
            return
        if time.monotonic() >= deadline:
            raise MigrationLockTimeout(timeout)
        time.sleep(_POLL_SECONDS)


@contextmanager
def _file_lock(database: Path, *, timeout: float) -> Iterator[None]:
    path = database.with_name(database.name + ".lock")
    deadline = time.monotonic() + timeout
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise MigrationLockTimeout(timeout) from None
                time.sleep(_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
