"""The sync engine and `SessionLocal`, for scripts, the CLI and background jobs.

    from app.sync_database import SessionLocal

    with SessionLocal.begin() as session:  # a unit of work: committed at the end, rolled back on error
        session.add(...)

Built from the same Settings as the app's async engine (pool size, overflow, timeout, recycle,
pre-ping, echo) over the sync driver of the same database: psycopg 3, PyMySQL or sqlite3. Each
connection gets what the app's connections get where correctness depends on it: foreign keys
(so ON DELETE CASCADE works) and the busy timeout on SQLite, UTC sessions on the servers.

`engine` and `SessionLocal` are built on first use, from `get_settings()`: importing this module
reads no setting and opens nothing, so a script may set DATABASE_URL before it asks for them.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from app.config import Settings, get_settings

if TYPE_CHECKING:  # built lazily by __getattr__ below
    engine: Engine
    SessionLocal: sessionmaker[Session]

_SYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "sqlite": "sqlite+pysqlite"}
_SQLITE_BEGIN = "sqlite_begin"


def to_sync_url(settings: Settings) -> URL:
    """The app's database URL (already checked and completed by Settings) on its sync driver."""
    url = settings.async_database_url
    url = url.set(drivername=_SYNC_DRIVERS[url.get_backend_name()])
    if url.get_backend_name() == "postgresql" and "ssl" in url.query:
        # Settings spelled libpq's sslmode as asyncpg's ssl; psycopg is libpq.
        query = dict(url.query)
        query["sslmode"] = query.pop("ssl")
        url = url.set(query=query)
    return url


def create_sync_engine(settings: Settings) -> Engine:
    url = to_sync_url(settings)
    backend = url.get_backend_name()
    options: dict[str, Any] = {
        "echo": settings.db_echo,
        # As on the async engines: errors (and so logs) carry no password hashes or emails.
        "hide_parameters": not settings.db_echo,
        "poolclass": QueuePool,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
    }
    if backend != "sqlite":
        # A file never goes stale; server connections do (restarts, idle timeouts).
        options["pool_recycle"] = settings.db_pool_recycle
        options["pool_pre_ping"] = settings.db_pool_pre_ping
        # The app's bound on connecting, so an unreachable server fails a script in seconds. No
        # statement timeout: like migrations and the seed, a script is not a request.
        options["connect_args"] = {"connect_timeout": max(1, math.ceil(settings.db_pool_timeout))}
        if settings.db_pgbouncer:
            # psycopg prepares a statement by name from its fifth run: unsafe behind PgBouncer's
            # transaction mode, as for the async engines (app.engines).
            options["connect_args"]["prepare_threshold"] = None
    engine = create_engine(url, **options)
    _configure_connections(engine, busy_timeout=settings.db_command_timeout)
    return engine


def _configure_connections(engine: Engine, *, busy_timeout: float) -> None:
    backend = engine.url.get_backend_name()
    if backend == "sqlite":
        busy_timeout_ms = round(busy_timeout * 1000)

        def configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # Off by default in SQLite; without it ON DELETE CASCADE silently does nothing.
            cursor.execute("PRAGMA foreign_keys=ON")
            # As the app's: readers do not block the writer, and a writer waits for the app's
            # writers instead of failing at once ("database is locked").
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            # SQLAlchemy's recipe for SAVEPOINTs on pysqlite (which the slug retry needs): the
            # driver would begin only before the first write, so a SAVEPOINT taken earlier
            # opened the transaction and its RELEASE committed it. We begin instead (below).
            dbapi_connection.isolation_level = None

        def begin(connection: Connection) -> None:
            connection.exec_driver_sql(connection.get_execution_options().get(_SQLITE_BEGIN, "BEGIN"))

        event.listen(engine, "connect", configure_sqlite)
        event.listen(engine, "begin", begin)
    elif backend == "mysql":
        # Naive UTC is what UTCDateTime stores; NOW() and friends should agree with it.
        event.listen(engine, "connect", _utc_session("SET time_zone = '+00:00'"))
    elif backend == "postgresql":
        # timestamptz is exact whatever the zone, but psycopg returns values in the session's
        # zone: UTC keeps raw SQL in a script or the shell showing what the API shows.
        event.listen(engine, "connect", _utc_session("SET TIME ZONE 'UTC'"))


def _utc_session(statement: str) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        # psycopg opened a transaction for it; a rollback (the pool's reset) would undo the SET.
        dbapi_connection.commit()

    return configure


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work on `engine`.

    expire_on_commit=False: a script prints or returns what it wrote after `begin()` committed,
    without a reload per object (and without a detached-instance error once the session closed).
    autoflush=False, as the app's sessions: writes reach the database at flush or commit, which
    the code chooses -- a query never flushes half-built objects as a side effect.
    On SQLite a unit of work takes the write lock as it begins (BEGIN IMMEDIATE), as the app's
    do, so writers queue on the busy timeout rather than fail on a stale snapshot. A session
    for reading (the shell) binds `engine` itself: `SessionLocal(bind=engine)`, which begins
    deferred and so never holds the write lock while idle.
    """
    units_of_work = engine.execution_options(**{_SQLITE_BEGIN: "BEGIN IMMEDIATE"})
    return sessionmaker(units_of_work, autoflush=False, expire_on_commit=False)


_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """`engine` and `SessionLocal`, built once, on first access."""
    if name not in ("engine", "SessionLocal"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if "SessionLocal" not in globals():
            default_engine = create_sync_engine(get_settings())
            # Assigned as module attributes: later lookups find them without coming back here.
            globals().update(engine=default_engine, SessionLocal=session_factory(default_engine))
    return globals()[name]
