"""What the app sees of its database: the pools' numbers, each statement's time, slow statements.

`observe_database` wires them onto the app's engines once, at `create_app()`: the pools report
their waits to `db_pool_*` and their connections are read off them before each collection, and
the dialects' execute events time every statement for `db_statement_duration_seconds` and for
the slow-statement line (DB_SLOW_QUERY_MS). With metrics off and the slow line off, nothing is
attached and a statement costs what it did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from app.database import Database
from app.metrics import Metrics
from app.pool_meter import ConnectionCounts, MeteredQueuePool, PoolMeter, connection_counts

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


class PrometheusPoolMeter(PoolMeter):
    """A pool's waits as `db_pool_waiters{pool=name}` and `db_pool_wait_seconds{pool=name}`."""

    def __init__(self, metrics: Metrics, pool: str) -> None:
        self._waiters = metrics.pool_waiters.labels(pool)
        self._waits, self._pool = metrics.pending_waits, pool
        self._waiters.set(0)

    def waiting(self, delta: int) -> None:
        self._waiters.inc(delta)

    def waited(self, seconds: float) -> None:
        self._waits.add(self._pool, seconds)


class PoolConnections:
    """Writes each pool's connections into `db_pool_connections`; run before every collection."""

    def __init__(self, metrics: Metrics, engines: dict[str, AsyncEngine]) -> None:
        self._pools = [
            (engine, [metrics.pool_connections.labels(name, state) for state in ConnectionCounts._fields])
            for name, engine in engines.items()
        ]

    def __call__(self) -> None:
        for engine, gauges in self._pools:
            # The engine's pool now: engine.dispose() replaces it.
            for gauge, count in zip(gauges, connection_counts(engine.sync_engine.pool), strict=True):
                gauge.set(count)


def observe_database(database: Database, *, metrics: Metrics | None, slow_statement_ms: float) -> None:
    if metrics is not None:
        _meter_pool(database.engine, PrometheusPoolMeter(metrics, TRANSACTION_POOL))
        # The gate in front of the autocommit pool is where its requests wait; the pool never does.
        database.gate.meter = PrometheusPoolMeter(metrics, AUTOCOMMIT_POOL)
        sample = PoolConnections(
            metrics, {AUTOCOMMIT_POOL: database.autocommit_engine, TRANSACTION_POOL: database.engine}
        )
        metrics.before_collection.append(sample)
        sample()
    if metrics is not None or slow_statement_ms > 0:
        timer = StatementTimer(metrics, slow_seconds=slow_statement_ms / 1000 if slow_statement_ms > 0 else None)
        for engine in (database.engine, database.autocommit_engine):
            timer.attach(engine)


def _meter_pool(engine: AsyncEngine, meter: PoolMeter) -> None:
    pool = engine.sync_engine.pool
    if isinstance(pool, MeteredQueuePool):  # an engine built elsewhere (a test's) may pool otherwise
        pool.meter = meter


class StatementTimer:
    """Times each statement where the dialect hands it to the driver: into the histogram, and into
    a WARNING with its SQL text -- never its parameters -- when it took `slow_seconds` or longer
    (a statement cut off by DB_COMMAND_TIMEOUT too, with its error).

    Dialect events rather than the engine's cursor events: an engine with listeners of its own
    makes SQLAlchemy join its listeners onto every new Connection and check them at every step,
    which cost about 20 µs per request (BENCHMARKS.md, "Cost of the operations layer").
    """

    def __init__(self, metrics: Metrics | None, *, slow_seconds: float | None) -> None:
        self._durations = metrics.pending_statements if metrics is not None else None
        self._slow = slow_seconds
        self._operations: dict[str, str] = {}

    def attach(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "do_execute", self._execute)
        event.listen(sync_engine, "do_execute_no_params", self._execute_no_params)
        event.listen(sync_engine, "do_executemany", self._executemany)

    def operation(self, statement: str) -> str:
        operation = self._operations.get(statement)
        if operation is None:
            first = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else ""
            operation = _OPERATIONS.get(first, "other")
            if len(self._operations) < _MAX_REMEMBERED:
                self._operations[statement] = operation
        return operation

    # Each returns True: the statement has been executed, by the dialect's own method.
    def _execute(self, cursor: Any, statement: str, parameters: Any, context: ExecutionContext) -> bool:
        return self._timed(statement, context.dialect.do_execute, cursor, statement, parameters, context)

    def _execute_no_params(self, cursor: Any, statement: str, context: ExecutionContext) -> bool:
        return self._timed(statement, context.dialect.do_execute_no_params, cursor, statement, context)

    def _executemany(self, cursor: Any, statement: str, parameters: Any, context: ExecutionContext) -> bool:
        return self._timed(statement, context.dialect.do_executemany, cursor, statement, parameters, context)

    def _timed(self, statement: str, execute: Callable[..., None], *arguments: Any) -> bool:
        started = time.perf_counter()
        try:
            execute(*arguments)
        except BaseException as exc:
            seconds = time.perf_counter() - started
            if self._slow is not None and seconds >= self._slow:
                self._log_slow(statement, seconds, error=exc)
            raise
        seconds = time.perf_counter() - started
        if self._durations is not None:
            self._durations.add(self._operations.get(statement) or self.operation(statement), seconds)
        if self._slow is not None and seconds >= self._slow:
            self._log_slow(statement, seconds, error=None)
        return True

    def _log_slow(self, statement: str, seconds: float, *, error: BaseException | None) -> None:
        fields: dict[str, Any] = {
            "duration_ms": round(seconds * 1000, 1),
            "operation": self.operation(statement),
            "statement": statement[:_MAX_LOGGED_SQL],
        }
        if error is not None:
            fields["error"] = type(error).__name__
        logger.warning("slow statement", extra=fields)
