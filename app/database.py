"""The one way to the database: the engines the app serves from and the handles a request gets.

A request reaches the database through handles that this module creates and closes:

- `ConnectionDep`, a `Connection` on the autocommit pool: reads, and writes of one statement
  (atomic on their own). Checked out at its first statement, in the order requests asked
  (`app.pool_gate`), and given back when the endpoint returns -- or earlier, by `release()`,
  when the request still has slow work to do without the database (a login's password hash).
- `SessionDep`, an `AsyncSession`: the unit of work of a request that writes more than one
  statement. Committed when the endpoint returns, rolled back when it raises.

Both are closed by `HandlesRoute` as the endpoint finishes, before the response starts: a client
never sees a 2xx for a write that did not commit, and a failed commit becomes an error response
through the usual handlers. (FastAPI's yield dependencies would do the same at a measured cost
per request: README, "Speed decisions".) Repositories
receive what they execute on; nobody else opens, commits or rolls back. Startup, the CLI and
scripts open their own unit of work with `Database.unit_of_work()` or `transaction(engine)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable
from starlette.routing import BaseRoute

from app.bounded_log import BoundedLog
from app.config import Settings
from app.engines import create_autocommit_engine, create_engine, for_units_of_work
from app.pool_gate import PoolGate
from app.read_positions import Positions, ReadRoute, remember_write
from app.replicas import Replica, Replicas

logger = logging.getLogger(__name__)
# During an outage every request's rollback fails like the request did: a line now and then.
_failed_rollbacks = BoundedLog(logger)


@dataclass(frozen=True, slots=True)
class Database:
    """The engines and session factory the app serves from, kept on `app.state.db`."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    autocommit_engine: AsyncEngine
    gate: PoolGate
    # With DATABASE_REPLICA_URLS: the replicas reads may go to, and where each user last wrote.
    replicas: Replicas | None = None
    positions: Positions | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        engine = create_engine(settings)
        autocommit_engine = create_autocommit_engine(settings)
        gate = PoolGate(
            autocommit_engine, slots=settings.db_pool_size + settings.db_max_overflow, timeout=settings.db_pool_timeout
        )
        # expire_on_commit=False: objects stay readable after the commit that happens before the
        # response is serialised; reloading them would need I/O outside the greenlet context.
        session_factory = async_sessionmaker(for_units_of_work(engine), expire_on_commit=False, autoflush=False)
        replicas = Replicas.from_settings(settings)
        positions = Positions.from_settings(settings) if replicas else None
        return cls(engine, session_factory, autocommit_engine, gate, replicas, positions)

    @property
    def dialect(self) -> Dialect:
        return self.engine.dialect

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection for the block, handed out in the order it was asked for."""
        connection = await self.gate.checkout()
        try:
            yield connection
        finally:
            await self.gate.checkin(connection)

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A session for startup and scripts: committed when the block ends, rolled back if it raises."""
        async with self.session_factory() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        if self.replicas is not None:
            await self.replicas.dispose()
        if self.positions is not None:
            self.positions.close()
        await self.autocommit_engine.dispose()
        await self.engine.dispose()


def transaction(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A Core unit of work for the CLI and scripts that hold only an engine: committed when the
    block ends, rolled back if it raises."""
    return engine.begin()


class Connection:
    """A request's connection on the autocommit pool, checked out at its first statement.

    Every statement commits as it completes. Give it to reads and to writes of exactly one
    statement; a write of several statements that must stand or fall together takes the session.
    """

    __slots__ = ("_checked_out_from", "_connection", "_gate", "_replica", "_route")

    def __init__(self, gate: PoolGate, route: ReadRoute | None = None) -> None:
        self._gate = self._checked_out_from = gate
        self._connection: AsyncConnection | None = None
        # A read request's, with replicas: where its statements may go instead of the primary.
        self._route = route
        self._replica: Replica | None = None

    @property
    def dialect(self) -> Dialect:
        return self._gate.dialect

    async def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        connection = self._connection or await self._checkout()
        try:
            return await connection.execute(statement, parameters)
        except (SQLAlchemyError, OSError) as exc:
            if self._replica is None:
                raise
            return await (await self._to_primary(exc)).execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Any:
        connection = self._connection or await self._checkout()
        try:
            return await connection.scalar(statement, parameters)
        except (SQLAlchemyError, OSError) as exc:
            if self._replica is None:
                raise
            return await (await self._to_primary(exc)).scalar(statement, parameters)

    async def release(self) -> None:
        """Give the connection back now; a later statement checks out another."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._checked_out_from.checkin(connection)

    async def _checkout(self) -> AsyncConnection:
        replica = await self._route.replica() if self._route is not None else None
        if replica is not None:
            try:
                self._connection = await replica.gate.checkout()
            except (SQLAlchemyError, OSError) as exc:
                assert self._route is not None
                self._route.failed(replica, exc, connecting=True)
            else:
                self._checked_out_from, self._replica = replica.gate, replica
                replica.reads += 1
                return self._connection
        self._checked_out_from, self._replica = self._gate, None
        self._connection = await self._gate.checkout()
        return self._connection

    async def _to_primary(self, error: BaseException) -> AsyncConnection:
        """A read the replica failed, for whatever reason, is the primary's to answer."""
        assert self._route is not None
        assert self._replica is not None
        self._route.failed(self._replica, error)
        with suppress(SQLAlchemyError, OSError):  # a broken connection: the pool discards it
            await self.release()
        return await self._checkout()


class _RequestHandles:
    """What one request holds: its autocommit connection and, once asked for, its session."""

    __slots__ = ("connection", "database", "session")

    def __init__(self, database: Database, route: ReadRoute | None = None) -> None:
        self.database = database
        self.connection = Connection(database.gate, route)
        self.session: AsyncSession | None = None

    async def close(self, *, commit: bool) -> None:
        try:
            if self.session is not None:
                # In a task of its own, shielded: a request cancelled now (a server ending its
                # graceful shutdown cancels what is left) still ends its transaction, all or
                # nothing, and gives the connection back; the cancellation is raised after.
                await asyncio.shield(_end(self.session, commit=commit))
        finally:
            await self.connection.release()


async def _end(session: AsyncSession, *, commit: bool) -> None:
    async with session:
        await (session.commit() if commit else session.rollback())


_HANDLES = "app.database.handles"


class HandlesRoute(APIRoute):
    """A route whose endpoint gets its database handles from this module, closed as it returns."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            database: Database = request.app.state.db
            route = ReadRoute.for_request(request, database.replicas, database.positions)
            handles = request.scope[_HANDLES] = _RequestHandles(database, route)
            try:
                response = await handler(request)
            except BaseException:
                try:
                    await handles.close(commit=False)
                except Exception as exc:  # noqa: BLE001 -- logged, and the endpoint's error goes on
                    # The endpoint's error is the one to answer with; a rollback that fails too
                    # (the connection is gone) only means there is nothing left to undo.
                    error = type(exc).__name__
                    _failed_rollbacks.warning(error, "rollback after a failed request failed as well", error=error)
                raise
            await handles.close(commit=True)
            if route is None and database.positions is not None and response.status_code < 400:
                # A write, with replicas. Shielded like the commit: a client gone now still leaves
                # its user's position.
                await asyncio.shield(remember_write(request, response, database.positions, database.autocommit))
            return response

        return handle


def check_routes(routes: Iterable[BaseRoute]) -> None:
    """At startup rather than at the first request: every API route closes its handles."""
    for route in routes:
        if isinstance(route, APIRoute) and not isinstance(route, HandlesRoute):
            raise TypeError(f"{route.path}: API routes must be HandlesRoute (APIRouter(route_class=HandlesRoute))")


def _handles(request: Request) -> _RequestHandles:
    try:
        handles: _RequestHandles = request.scope[_HANDLES]
    except KeyError:
        raise RuntimeError("a route that takes database handles must be a HandlesRoute (route_class=)") from None
    return handles


def request_connection(request: Request) -> Connection:
    """The request's connection, for a dependency that takes the request anyway: one dependency
    fewer for FastAPI to resolve on nearly every request (the caller's)."""
    return _handles(request).connection


async def _connection(request: Request) -> Connection:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in a worker thread.
    return request_connection(request)


async def _session(request: Request) -> AsyncSession:
    handles = _handles(request)
    if handles.session is None:
        handles.session = handles.database.session_factory()
    return handles.session


async def _database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


ConnectionDep = Annotated[Connection, Depends(_connection)]
"""The request's autocommit connection: reads and one-statement writes."""

SessionDep = Annotated[AsyncSession, Depends(_session)]
"""The request's unit of work: committed before the response starts, rolled back on an error."""

DatabaseDep = Annotated[Database, Depends(_database)]
"""The app's database itself, for what is not a request's data: readiness."""
