"""What the app sees of its database: the pools' numbers, each statement's time, slow statements.

`observe_database` wires them onto the app's engines once, at `create_app()`: the pools report
to `db_pool_*`, and SQLAlchemy's cursor events time every statement for
`db_statement_duration_seconds` and for the slow-statement line (DB_SLOW_QUERY_MS). With
metrics off and the slow line off, nothing is attached and a statement costs what it did.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from app.database import Database
from app.metrics import Metrics
from app.pool_meter import MeteredQueuePool, PoolMeter

logger = logging.getLogger("app.database")

# The pools' names in `db_pool_*{pool}`, after what they serve (app.database).
AUTOCOMMIT_POOL = "autocommit"
TRANSACTION_POOL = "transaction"

_OPERATIONS = {"select": "select", "with": "select", "insert": "insert", "update": "update", "delete": "delete"}
# Enough for every statement the app builds (its texts are cached and reused); text built per
# call beyond that is classified again each time rather than remembered without bound.
_MAX_REMEMBERED = 2000
# A slow statement is logged in full up to this many characters.
_MAX_LOGGED_SQL = 4000
_STARTED = "_app_statement_started"


class PrometheusPoolMeter(PoolMeter):
    """A pool's numbers as `db_pool_*{pool=name}`, each gauge written only when it changes."""

    def __init__(self, metrics: Metrics, pool: str) -> None:
        self._waiters = metrics.pool_waiters.labels(pool)
        self._wait = metrics.pool_wait.labels(pool)
        self._states = [metrics.pool_connections.labels(pool, state) for state in ("in_use", "idle", "overflow")]
        self._last = [-1, -1, -1]
        for gauge in self._states:
            gauge.set(0)
        self._waiters.set(0)

    def waiting(self, delta: int) -> None:
        self._waiters.inc(delta)

    def waited(self, seconds: float) -> None:
        self._wait.observe(seconds)

    def connections(self, *, in_use: int, idle: int, overflow: int) -> None:
        for index, value in enumerate((in_use, idle, overflow)):
            if self._last[index] != value:
                self._last[index] = value
                self._states[index].set(value)


def observe_database(database: Database, *, metrics: Metrics | None, slow_statement_ms: float) -> None:
    if metrics is not None:
        _meter_pool(database.engine, PrometheusPoolMeter(metrics, TRANSACTION_POOL), meters_waits=True)
        autocommit = PrometheusPoolMeter(metrics, AUTOCOMMIT_POOL)
        # The gate in front of the autocommit pool is where its requests wait.
        _meter_pool(database.autocommit_engine, autocommit, meters_waits=False)
        database.gate.meter = autocommit
    if metrics is not None or slow_statement_ms > 0:
        timer = StatementTimer(metrics, slow_seconds=slow_statement_ms / 1000 if slow_statement_ms > 0 else None)
        for engine in (database.engine, database.autocommit_engine):
            timer.attach(engine)


def _meter_pool(engine: AsyncEngine, meter: PoolMeter, *, meters_waits: bool) -> None:
    pool = engine.sync_engine.pool
    if isinstance(pool, MeteredQueuePool):  # an engine built elsewhere (a test's) may pool otherwise
        pool.meter, pool.meters_waits = meter, meters_waits


class StatementTimer:
    """Times each statement between SQLAlchemy's cursor events: into the histogram, and into a
    WARNING with its SQL text -- never its parameters -- when it took `slow_seconds` or longer."""

    def __init__(self, metrics: Metrics | None, *, slow_seconds: float | None) -> None:
        self._histograms = (
            {name: metrics.statement_duration.labels(name) for name in (*_OPERATIONS.values(), "other")}
            if metrics is not None
            else None
        )
        self._slow = slow_seconds
        self._operations: dict[str, str] = {}

    def attach(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._before)
        event.listen(sync_engine, "after_cursor_execute", self._after)
        if self._slow is not None:
            event.listen(sync_engine, "handle_error", self._failed)

    def operation(self, statement: str) -> str:
        operation = self._operations.get(statement)
        if operation is None:
            first = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else ""
            operation = _OPERATIONS.get(first, "other")
            if len(self._operations) < _MAX_REMEMBERED:
                self._operations[statement] = operation
        return operation

    def _before(
        self, _conn: Connection, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        setattr(context, _STARTED, time.perf_counter())

    def _after(self, _conn: Connection, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        seconds = time.perf_counter() - getattr(context, _STARTED)
        operation = self.operation(statement)
        if self._histograms is not None:
            self._histograms[operation].observe(seconds)
        if self._slow is not None and seconds >= self._slow:
            self._log(statement, operation, seconds, error=None)

    def _failed(self, exception_context: ExceptionContext) -> None:
        # A statement cut off by DB_COMMAND_TIMEOUT is the slowest of all; it never reaches "after".
        context: ExecutionContext | None = exception_context.execution_context
        started = getattr(context, _STARTED, None)
        statement = exception_context.statement
        if started is None or statement is None or self._slow is None:
            return
        seconds = time.perf_counter() - started
        if seconds >= self._slow:
            error = type(exception_context.original_exception).__name__
            self._log(statement, self.operation(statement), seconds, error=error)

    def _log(self, statement: str, operation: str, seconds: float, *, error: str | None) -> None:
        fields: dict[str, Any] = {
            "duration_ms": round(seconds * 1000, 1),
            "operation": operation,
            "statement": statement[:_MAX_LOGGED_SQL],
        }
        if error is not None:
            fields["error"] = error
        logger.warning("slow statement", extra=fields)
