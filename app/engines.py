"""How the app's engines are built: pool options, bounds on connecting and on each statement,
and the session settings every new connection gets.

Two engines serve the app (see `app.database`): a transactional one for units of work and an
autocommit one for reads and one-statement writes. Both share these options; Alembic's env.py
uses the connect bounds only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncmy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import Settings
from app.migrations import MigrationRefused
from app.pool_meter import MeteredQueuePool

# Behind PgBouncer in transaction mode consecutive transactions may run on different server
# connections, so a statement prepared under a name in one is unknown (or another statement) in
# the next. With its cache off asyncpg marks every statement unprepared and sends Parse again with
# each execution, in the same round trip; the empty name makes that statement the unnamed one,
# which no later transaction looks for. The two go together: an unnamed statement with the cache
# on would be reused unparsed. SQLAlchemy's cache of compiled SQL stays on. Cost: BENCHMARKS.md
# "PgBouncer".
_PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_name_func": lambda: "",
}


def engine_options(settings: Settings, url: URL) -> dict[str, Any]:
    """Keyword arguments for the app's create_async_engine, only those the dialect takes."""
    options: dict[str, Any] = {
        "echo": settings.db_echo,
        # Error messages (and so logs) would otherwise carry the statement's parameters:
        # password hashes, emails. Shown only when SQL logging was asked for.
        "hide_parameters": not settings.db_echo,
        # A file SQLite database is served from a queue pool like the servers (SQLAlchemy's default
        # for aiosqlite files), so size and timeout apply to it as well.
        "poolclass": MeteredQueuePool,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        **connect_options(url, connect_timeout=settings.db_pool_timeout, command_timeout=settings.db_command_timeout),
    }
    if settings.db_pgbouncer:
        options["connect_args"] = {**options["connect_args"], **_PGBOUNCER_CONNECT_ARGS}
    if url.get_backend_name() != "sqlite":
        # Connections to a server go stale (restarts, idle timeouts, failovers); a file never does.
        options["pool_recycle"] = settings.db_pool_recycle
        options["pool_pre_ping"] = settings.db_pool_pre_ping
    return options


def connect_options(url: URL, *, connect_timeout: float, command_timeout: float | None) -> dict[str, Any]:
    """Bounds on how long connecting, and each statement, may take.

    Without them an unreachable or frozen server holds a request for the driver's default
    (60 s to connect with asyncpg; forever with asyncmy, or on an established connection that
    went silent) instead of failing over to a 503. Alembic passes no command timeout: a
    migration may legitimately run for long.
    """
    backend = url.get_backend_name()
    if backend == "postgresql":
        connect_args: dict[str, Any] = {"timeout": connect_timeout}
        if command_timeout is not None:
            connect_args["command_timeout"] = command_timeout
        return {"connect_args": connect_args}
    if backend == "mysql":
        return {"async_creator": _bounded_mysql_connect(url, connect_timeout, command_timeout)}
    return {}


def _bounded_mysql_connect(url: URL, timeout: float, read_timeout: float | None) -> Callable[[], Awaitable[Any]]:
    """asyncmy's own connect_timeout covers the TCP connect only: a server (or proxy) that
    accepts and then stays silent would hold a request forever in the handshake. Bound the
    whole connect instead, with the arguments SQLAlchemy's dialect would have passed."""
    _, params = url.get_dialect()().create_connect_args(url)
    if read_timeout is not None:
        params["read_timeout"] = read_timeout

    async def connect() -> Any:
        return await asyncio.wait_for(asyncmy.connect(**params), timeout)

    return connect


def create_engine(settings: Settings, url: URL | None = None) -> AsyncEngine:
    """The transactional engine: units of work, startup, the CLI and scripts."""
    url = url or settings.async_database_url
    engine = create_async_engine(url, **engine_options(settings, url))
    _configure_connections(engine, busy_timeout=settings.db_command_timeout)
    if engine.dialect.name == "sqlite":
        _sqlite_transactions_we_begin(engine)
    return engine


def create_autocommit_engine(settings: Settings, url: URL | None = None) -> AsyncEngine:
    """The engine for work that needs no transaction: the same database, a pool of its own, autocommit.

    A read is one or two statements that change nothing, and a write of exactly one statement is
    atomic on its own (the database commits it as it completes): neither needs BEGIN and COMMIT,
    which asyncpg sends as round trips of their own. The isolation level is the engine's own,
    fixed when a connection is opened -- switching a shared pool's connections per request, with
    execution options, costs a reset at every checkin.
    """
    url = url or settings.async_database_url
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", **engine_options(settings, url))
    _configure_connections(engine, busy_timeout=settings.db_command_timeout)
    return engine


_MIGRATIONS_GO_DIRECT = "migrations hold a session lock that PgBouncer's transaction mode does not keep"


def migrations_url(settings: Settings, *, why: str = _MIGRATIONS_GO_DIRECT) -> URL:
    """The address migrations, their lock and the seed use; refused when only PgBouncer's is known."""
    if settings.db_pgbouncer and settings.migrations_database_url is None:
        raise MigrationRefused(f"DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL, PostgreSQL's own address: {why}")
    return settings.async_migrations_url


def create_migrations_engine(settings: Settings, *, why: str = _MIGRATIONS_GO_DIRECT) -> AsyncEngine:
    """The transactional engine on PostgreSQL itself (or the one database there is)."""
    direct = settings.model_copy(update={"db_pgbouncer": False})
    return create_engine(direct, migrations_url(settings, why=why))


def _configure_connections(engine: AsyncEngine, *, busy_timeout: float) -> None:
    """Per-connection session settings, applied whenever the pool opens a connection."""
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        busy_timeout_ms = round(busy_timeout * 1000)

        def configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # Off by default in SQLite; without it ON DELETE CASCADE silently does nothing.
            cursor.execute("PRAGMA foreign_keys=ON")
            # Readers no longer block the writer (and vice versa); the busy timeout makes a
            # second writer wait for the lock instead of failing at once with "database is locked".
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(engine.sync_engine, "connect", configure_sqlite)
    elif backend == "mysql":
        event.listen(engine.sync_engine, "connect", _configure_mysql_connection)
    elif backend == "postgresql":
        event.listen(engine.sync_engine, "invalidate", _abort_asyncpg_connection)


def _abort_asyncpg_connection(dbapi_connection: Any, _record: Any, _exception: BaseException | None) -> None:
    """A connection the pool gives up on is aborted at once. SQLAlchemy closes it gracefully
    first, waiting up to 2 s for a server that has just failed to answer in DB_COMMAND_TIMEOUT
    -- 2 s more for a request that already timed out (tests/test_silent_database.py)."""
    if dbapi_connection is not None:
        dbapi_connection.driver_connection.terminate()


def _configure_mysql_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Timestamps are stored as naive UTC; a session in UTC keeps NOW() and friends consistent
    # with them for anyone who queries by hand through this engine.
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()


_SQLITE_BEGIN = "sqlite_begin"


def for_units_of_work(engine: AsyncEngine) -> AsyncEngine:
    """`engine` (same pool) as sessions use it: on SQLite their transactions take the write lock
    as they begin (see `_sqlite_transactions_we_begin`)."""
    return engine.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})


def _sqlite_transactions_we_begin(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe for SAVEPOINTs on pysqlite/aiosqlite: the driver stops beginning
    transactions on its own (it would only do so before the first write, so a SAVEPOINT taken
    earlier opened the transaction and its RELEASE committed it), and SQLAlchemy's "begin"
    emits BEGIN itself.

    A unit of work begins IMMEDIATE, taking the write lock as it starts. A deferred BEGIN would
    start a read snapshot at its first SELECT, and a write after another writer's commit would
    then fail at once with SQLITE_BUSY (the busy timeout does not apply to a stale snapshot);
    waiting for the lock up front queues writers instead, as the servers' row locks do. Other
    transactions (reading the revision, the seed's loads, which write first) begin deferred, so
    a readiness check never waits for a writer.
    """

    def no_driver_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def begin(connection: Connection) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))

    event.listen(engine.sync_engine, "connect", no_driver_begin)
    event.listen(engine.sync_engine, "begin", begin)
