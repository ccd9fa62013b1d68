"""Engine, session factory and the per-request unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

import asyncmy
from fastapi import Depends, Request
from sqlalchemy import Row, event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config import Settings

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape: what the read side's Core queries hand to the response models."""


def row_dicts(rows: Sequence[AnyRow]) -> list[dict[str, Any]]:
    """Result rows as plain dicts keyed by column name: the cheapest input for pydantic.

    A page of 10 users with their 50 recent posts took 270 µs to validate and serialise from
    `row._mapping` and 110 µs from these dicts. SQLAlchemy's rows answer attribute and mapping
    access through Python code per column; `zip` over the row reads the values in C. The names
    become plain `str`, so the dicts are ordinary wherever they go: SQLAlchemy's names are a `str`
    subclass, which pydantic's JSON encoder handles on a slow path (30 times slower, measured).
    """
    if not rows:
        return []
    names = tuple(str(name) for name in rows[0]._fields)
    return [dict(zip(names, row, strict=True)) for row in rows]


def row_dict(row: AnyRow) -> dict[str, Any]:
    """One row as `row_dicts` gives it."""
    return row_dicts((row,))[0]


def engine_options(settings: Settings, url: URL) -> dict[str, Any]:
    """Keyword arguments for the app's create_async_engine, only those the dialect takes."""
    options: dict[str, Any] = {
        "echo": settings.db_echo,
        # Error messages (and so logs) would otherwise carry the statement's parameters:
        # password hashes, emails. Shown only when SQL logging was asked for.
        "hide_parameters": not settings.db_echo,
        # A file SQLite database is served from a queue pool like the servers (SQLAlchemy's default
        # for aiosqlite files), so size and timeout apply to it as well.
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        **connect_options(url, connect_timeout=settings.db_pool_timeout, command_timeout=settings.db_command_timeout),
    }
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
    url = url or settings.async_database_url
    engine = create_async_engine(url, **engine_options(settings, url))
    configure_connections(engine, busy_timeout=settings.db_command_timeout)
    return engine


def configure_connections(engine: AsyncEngine, *, busy_timeout: float) -> None:
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


def _configure_mysql_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Timestamps are stored as naive UTC; a session in UTC keeps NOW() and friends consistent
    # with them for anyone who queries by hand through this engine.
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after the commit that happens before the
    # response is serialised; reloading them would need I/O outside the greenlet context.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_autocommit_engine(settings: Settings, url: URL | None = None) -> AsyncEngine:
    """The engine for work that needs no transaction: the same database, a pool of its own, autocommit.

    A read is one or two statements that change nothing, and a write of exactly one statement is
    atomic on its own (the database commits it as it completes): neither needs BEGIN and COMMIT,
    which asyncpg sends as round trips of their own. The isolation level is the engine's own,
    fixed when a connection is opened -- switching a shared pool's connections per request, with
    execution options, costs a reset at every checkin. Other writes, migrations and scripts use
    the transactional engine.
    """
    url = url or settings.async_database_url
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", **engine_options(settings, url))
    configure_connections(engine, busy_timeout=settings.db_command_timeout)
    return engine


class _InOrder:
    """First come, first served: one slot per connection of the autocommit engine's pool.

    SQLAlchemy's async pool hands a connection that comes back to whichever coroutine asks next,
    and a coroutine that was already waiting, woken to find it taken, joins the back of the line
    again (asyncio.Queue re-queues it). Under sustained load some requests lose that race over and
    over: measured here with 32 clients on a pool of 10, the p99 latency of a page of comments was
    ten times its mean, against twice for asyncpg's own pool. asyncio.Semaphore hands a released
    slot to its longest waiter and lets no newcomer pass one, so with a slot per connection the
    pool itself never has a waiter. The wait is bounded by the pool's timeout, as before: past it,
    the pool's own TimeoutError, which the app answers with a 503.
    """

    __slots__ = ("_connection", "_engine", "_slots", "_timeout")

    def __init__(self, engine: AsyncEngine, slots: asyncio.Semaphore, timeout: float) -> None:
        self._engine, self._slots, self._timeout = engine, slots, timeout

    async def __aenter__(self) -> AsyncConnection:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no connection free within {self._timeout:g} s") from None
        else:
            await self._slots.acquire()  # free: returns at once, without suspending
        try:
            self._connection = self._engine.connect()
            return await self._connection.start()
        except BaseException:
            self._slots.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            # Shielded, as AsyncConnection's own exit is: a request cancelled mid-close (the client
            # went away) must still hand its connection back to the pool.
            await asyncio.shield(self._connection.close())
        finally:
            self._slots.release()


@dataclass(frozen=True, slots=True)
class Database:
    """The engines and session factory the app serves from, kept on `app.state.db`."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    autocommit_engine: AsyncEngine
    slots: asyncio.Semaphore
    pool_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        slots = asyncio.Semaphore(settings.db_pool_size + settings.db_max_overflow)
        return cls(
            engine, create_session_factory(engine), create_autocommit_engine(settings), slots, settings.db_pool_timeout
        )

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection in autocommit, as `async with database.reading() as connection:`; waiting
        requests get one in the order they asked."""
        return _InOrder(self.autocommit_engine, self.slots, self.pool_timeout)

    def writing(self, *, one_statement: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for Core writes -- for a statement or two, where a session's unit of work
        would be all overhead. Committed when the block ends, so before the response is sent.

        By default a transaction, rolled back if the block raises. With `one_statement=True` the
        block promises to run exactly one statement, and gets an autocommit connection: that
        statement commits as it completes, all or nothing, without the BEGIN and COMMIT round trips.
        """
        if one_statement:
            return self.reading()
        return self.engine.begin()

    async def dispose(self) -> None:
        await self.autocommit_engine.dispose()
        await self.engine.dispose()


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler returns, roll back when it raises.

    Used with `scope="function"`, so the commit happens before the response is sent: a client
    never sees a 2xx for a write that did not commit, and a failed commit becomes an error
    response through the usual exception handlers.
    """
    database: Database = request.app.state.db
    async with database.session_factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


async def _database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


SessionDep = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
"""The unit of work of a request that writes."""

DatabaseDep = Annotated[Database, Depends(_database)]
"""What a request that only reads takes: it reads inside `async with database.reading() as connection`,
with Core statements whose rows go straight into the response models -- no session, identity map
or ORM objects to build. (A context manager in the handler rather than a generator dependency:
FastAPI's machinery for those cost more per request than the query, and the connection goes back
to the pool before the response is serialised.)"""
