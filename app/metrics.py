"""The Prometheus metrics: their names, labels and buckets, and `GET /metrics`.

Names and labels are a contract (dashboards and alerts are written against them; README:
Operations). One process keeps them in memory; several workers of `python -m app serve` (or
any server that sets PROMETHEUS_MULTIPROC_DIR before starting its workers) write them to files
in that directory, and a scrape, answered by any worker, adds up every worker's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Final

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


class Metrics:
    """The app's metrics, in a registry of its own (two apps in one process count apart)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "http_requests_total", "Requests answered", ("method", "route", "status"), registry=registry
        )
        self.request_duration = Histogram(
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
        self.pool_wait = Histogram(
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
        self.statement_duration = Histogram(
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
        # The labelled children, looked up once: `.labels()` takes a lock and builds a key each time.
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "OTHER"
        counter = self._requests.get((method, route, status))
        if counter is None:
            counter = self._requests[method, route, status] = self.requests.labels(method, route, str(status))
        counter.inc()
        duration = self._durations.get((method, route))
        if duration is None:
            duration = self._durations[method, route] = self.request_duration.labels(method, route)
        duration.observe(seconds)

    def set_info(self, *, version: str, schema_revision: str | None) -> None:
        if multiprocess_directory() is None:  # each worker sets it once; clear() is not for files
            self.info.clear()
        self.info.labels(version, schema_revision or "unknown").set(1)

    def sample(self) -> None:
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

    @staticmethod
    def process_stopped() -> None:
        """Take this worker's live gauges out of the sum (multi-process mode only)."""
        if multiprocess_directory() is not None:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


async def serve_metrics(request: Request) -> Response:
    """The Prometheus scrape endpoint (text exposition format)."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = metrics.exposition(request.headers.get("accept"))
    return Response(body, media_type=content_type)
