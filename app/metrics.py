"""The Prometheus metrics: their names, labels and buckets, and `GET /metrics`.

Names and labels are a contract (dashboards and alerts are written against them; README:
Operations). One process keeps them in memory; several workers of `python -m app serve` (or
any server that sets PROMETHEUS_MULTIPROC_DIR before starting its workers) write them to files
in that directory, and a scrape, answered by any worker, adds up every worker's.

What happens on every request and every statement is not written into prometheus-client's
objects as it happens (a lock and a handful of calls per counter and histogram, about 4 % of a
read's instructions): it is noted in a plain list (`Pending`) and written in one go -- before
every collection in this process, at the end of the event loop's turn when another worker may
answer the scrape, otherwise within SAMPLE_INTERVAL (BENCHMARKS.md, "Cost of the operations
layer"). A scrape never misses an observation made before it.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, multiprocess
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

# A `_created` series per labelled child doubles what a scrape carries and no dashboard uses it.
disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROCESS_DIRECTORY: Final = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH: Final = "/metrics"
UNMATCHED_ROUTE: Final = "unmatched"
SAMPLE_INTERVAL: Final = 1.0

# Requests take milliseconds (BENCHMARKS.md); the buckets resolve those and still see an outage's seconds.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_STATEMENT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

# Methods outside these are counted as one: a label value per invented method would let any
# client grow the metrics without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_DIRECTORY) or None


class BatchHistogram(Histogram):
    """prometheus-client's Histogram, whose labelled children also take many observations at once:
    each bucket and the sum written once, the same totals as one `observe()` per amount."""

    def observe_all(self, amounts: list[float]) -> None:
        bounds, counts = self._upper_bounds, [0] * len(self._upper_bounds)
        for amount in amounts:
            # The first bucket whose bound is not below the amount: where `observe()` puts it.
            counts[bisect_left(bounds, amount)] += 1
        for bucket, count in zip(self._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self._sum.inc(sum(amounts))


Key = TypeVar("Key", bound=Hashable)


class Pending(Generic[Key]):
    """Amounts observed since the last write, by their labels; `Metrics.write_pending` empties it.

    Only the event loop's thread observes (the middleware, the pools and the statement timer all
    run there), so a list append is all the locking this needs.
    """

    __slots__ = ("_amounts", "_due", "_write")

    def __init__(self, write: Callable[[Key, list[float]], None], due: Callable[[], None]) -> None:
        self._amounts: dict[Key, list[float]] = {}
        self._write, self._due = write, due

    def add(self, key: Key, amount: float) -> None:
        amounts = self._amounts.get(key)
        if amounts is not None:
            amounts.append(amount)
            return
        first = not self._amounts
        self._amounts[key] = [amount]
        if first:
            self._due()

    def write(self) -> None:
        amounts, self._amounts = self._amounts, {}
        for key, values in amounts.items():
            self._write(key, values)


class Metrics:
    """The app's metrics, in a registry of its own (two apps in one process count apart)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "http_requests_total", "Requests answered", ("method", "route", "status"), registry=registry
        )
        self.request_duration = BatchHistogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's last byte",
            ("method", "route"),
            buckets=_REQUEST_BUCKETS,
            registry=registry,
        )
        # livesum: a worker that stopped no longer holds connections; its numbers leave the sum.
        self.pool_connections = Gauge(
            "db_pool_connections",
            "Open connections of each pool: in_use and overflow (in use beyond DB_POOL_SIZE) and idle add up to all",
            ("pool", "state"),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_waiters = Gauge(
            "db_pool_waiters",
            "Requests waiting for a connection",
            ("pool",),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_wait = BatchHistogram(
            "db_pool_wait_seconds",
            "Time to get a connection (waiting for a free one, and opening it when new)",
            ("pool",),
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self.database_errors = Counter(
            "db_errors_total",
            "Requests answered 503 because of the database, by reason",
            ("reason",),
            registry=registry,
        )
        self.statement_duration = BatchHistogram(
            "db_statement_duration_seconds",
            "Time of each SQL statement, by kind",
            ("operation",),
            buckets=_STATEMENT_BUCKETS,
            registry=registry,
        )
        self.info = Gauge(
            "app_info",
            "Always 1: the running version and the schema revision it found at startup",
            ("version", "schema_revision"),
            registry=registry,
            multiprocess_mode="max",
        )
        # Gauges read off their source rather than pushed as it changes, written just before a
        # collection (and, with several workers, every SAMPLE_INTERVAL seconds by each).
        self.before_collection: list[Callable[[], None]] = []
        # Another worker may answer the next scrape: what this one saw is written as its turn ends.
        self._write_delay = 0.0 if multiprocess_directory() else SAMPLE_INTERVAL
        self._write_scheduled: asyncio.AbstractEventLoop | None = None
        self.pending_requests: Pending[tuple[str, str, int]] = Pending(self._write_requests, self._write_soon)
        self.pending_statements: Pending[str] = Pending(self._write_statements, self._write_soon)
        self.pending_waits: Pending[str] = Pending(self._write_waits, self._write_soon)
        self._pending = (self.pending_requests, self.pending_statements, self.pending_waits)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.pending_requests.add((method if method in _METHODS else "OTHER", route, status), seconds)

    def write_pending(self) -> None:
        self._write_scheduled = None
        for pending in self._pending:
            pending.write()

    def _write_soon(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside an event loop (a test observing directly): at once
            self.write_pending()
            return
        # Per loop: one that stopped with a write still due (a test client's) must not hold back the next.
        if self._write_scheduled is not loop:
            self._write_scheduled = loop
            loop.call_later(self._write_delay, self.write_pending)

    def _write_requests(self, key: tuple[str, str, int], seconds: list[float]) -> None:
        method, route, status = key
        self.requests.labels(method, route, str(status)).inc(len(seconds))
        self.request_duration.labels(method, route).observe_all(seconds)

    def _write_statements(self, operation: str, seconds: list[float]) -> None:
        self.statement_duration.labels(operation).observe_all(seconds)

    def _write_waits(self, pool: str, seconds: list[float]) -> None:
        self.pool_wait.labels(pool).observe_all(seconds)

    def set_info(self, *, version: str, schema_revision: str | None) -> None:
        if multiprocess_directory() is None:  # each worker sets it once; clear() is not for files
            self.info.clear()
        self.info.labels(version, schema_revision or "unknown").set(1)

    def sample(self) -> None:
        self.write_pending()
        for write in self.before_collection:
            write()

    async def keep_sampling(self) -> None:
        """With several workers a scrape is answered by one: the others' gauges are their samples."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The text a scrape gets, in the format its Accept header asks for."""
        self.sample()
        registry = self.registry
        if (directory := multiprocess_directory()) is not None:
            registry = CollectorRegistry(auto_describe=False)
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type

    def process_stopped(self) -> None:
        """Write what is pending (another worker may answer a later scrape) and take this worker's
        live gauges out of the sum (multi-process mode only)."""
        self.write_pending()
        if multiprocess_directory() is not None:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def serve_metrics(request: Request) -> Response:
    """The Prometheus scrape endpoint (text exposition format)."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
