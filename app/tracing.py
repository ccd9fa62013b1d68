"""OpenTelemetry traces, when OTEL_EXPORTER_OTLP_ENDPOINT is set: a server span for each request,
with the SQL statements it ran (on either engine) as its children.

Optional twice over. The packages are an extra (`pip install '.[otel]'`), and with the endpoint
unset nothing of them is imported or installed: no middleware, no event listener, no thread.
With it set, spans are sent in batches, from a background thread, over OTLP/HTTP to
`{endpoint}/v1/traces` (OpenTelemetry's rule for the generic variable); the exporter's other
OTEL_EXPORTER_OTLP_* variables (headers, timeout, a per-signal endpoint) apply as usual.

The tracer provider is the app's own, never set as the global one: two apps in one process (the
tests) trace apart, and FastAPI's native telemetry, which turns itself on when a global provider
is configured, stays off. The engines are instrumented one by one, not through the SQLAlchemy
instrumentor, which patches `create_engine` for the whole process and instruments once per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import ConfigError, Settings
from app.database import Database
from app.request_id import current_request_id

DEFAULT_SERVICE_NAME = "blogapi"
REQUEST_ID_ATTRIBUTE = "http.request_id"
# Matched against scheme://host/path: health probes and metric scrapes, a span each of which
# would bury the requests that matter (one regex, as the list is split on commas).
EXCLUDED_URLS = r"^[^:/]+://[^/]*/(health|metrics)(/|$)"
NOT_INSTALLED = "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed: pip install '.[otel]'"


def traces_endpoint(endpoint: str) -> str:
    """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, else `{endpoint}/v1/traces`."""
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or f"{endpoint.rstrip('/')}/v1/traces"


class RequestIdOnSpan:
    """Puts the request's id on its server span. Added innermost: by the time a request reaches
    it, the request-id middleware (outside it) has named the request."""

    def __init__(self, app: ASGIApp, *, current_span: Callable[[], Any]) -> None:
        self.app = app
        self.current_span = current_span

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (request_id := current_request_id()) is not None:
            self.current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
        await self.app(scope, receive, send)


def install_tracing(app: FastAPI, database: Database, settings: Settings, *, tracer_provider: Any = None) -> None:
    """Trace the app's requests and its engines' statements, if OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Call it once the app's middleware is added and before it serves its first request (Starlette
    builds the middleware stack then). `tracer_provider` replaces the OTLP one (tests pass one
    with an in-memory exporter).
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint is None:
        return
    if app.middleware_stack is not None:
        raise RuntimeError("install_tracing must run before the app serves its first request")
    try:
        # Imported here, not at the top: with tracing off, none of it is loaded.
        from opentelemetry import trace  # noqa: PLC0415
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415
        from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_version  # noqa: PLC0415
        from opentelemetry.metrics import NoOpMeterProvider  # noqa: PLC0415
    except ImportError:
        raise ConfigError(NOT_INSTALLED) from None
    provider = tracer_provider if tracer_provider is not None else _otlp_provider(endpoint)
    # Traces only: the service's metrics are Prometheus's (GET /metrics), so the instrumentations'
    # own metrics go nowhere, at no cost.
    meters = NoOpMeterProvider()
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        meter_provider=meters,
        excluded_urls=EXCLUDED_URLS,
        # One span per ASGI message sent or received would double the spans of a request and say
        # nothing the server span does not.
        exclude_spans=["receive", "send"],
    )
    # Appended, so innermost: inside the request-id middleware, whatever order the others were added in.
    app.user_middleware.append(Middleware(RequestIdOnSpan, current_span=trace.get_current_span))
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_version)
    connections = meters.get_meter("opentelemetry.instrumentation.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage"
    )
    for engine in (database.engine, database.autocommit_engine):
        EngineTracer(tracer, engine.sync_engine, connections)  # type: ignore[no-untyped-call]  # untyped upstream


def _otlp_provider(endpoint: str) -> Any:
    """A provider that batches spans to the collector at `endpoint`, flushed when the process exits."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError:
        raise ConfigError(NOT_INSTALLED) from None
    # Given explicitly, the name wins over OTEL_RESOURCE_ATTRIBUTES; its other attributes still apply.
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint(endpoint))))
    return provider
