"""Traces (app/tracing.py), through the real app with the SDK's in-memory exporter: one server span
per request, the statements it ran as its children, on both engines; nothing at all when the
endpoint is unset; one clear line when the extra is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import ConfigError, Settings, load_settings
from app.main import create_app
from app.request_id import REQUEST_ID
from app.tracing import REQUEST_ID_ATTRIBUTE, install_tracing, traces_endpoint
from tests.conftest import PASSWORD, make_settings, new_email, serving
from tests.databases import ScratchDatabase

ENDPOINT = "http://127.0.0.1:4318"
# What the extra brings; FastAPI itself imports the OpenTelemetry API, so that one is always loaded.
EXTRA_MODULES = ("opentelemetry.sdk", "opentelemetry.instrumentation", "opentelemetry.exporter")
MISSING_USER = 2**31 - 1


def with_endpoint(settings: Settings) -> Settings:
    return settings.model_copy(update={"otel_exporter_otlp_endpoint": ENDPOINT})


@dataclass
class Traced:
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter

    def request(self) -> tuple[ReadableSpan, list[ReadableSpan]]:
        """The server span of the one request made since the last call, and all other spans; clears."""
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        servers = [span for span in spans if span.kind is SpanKind.SERVER]
        assert len(servers) == 1, [(span.name, span.kind) for span in spans]
        return servers[0], [span for span in spans if span is not servers[0]]


@asynccontextmanager
async def traced_app(app: FastAPI, settings: Settings) -> AsyncIterator[Traced]:
    # The app is built without the endpoint (so that create_app, should it install tracing
    # itself, installs none) and traced here, into the test's own exporter.
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracing(app, app.state.db, with_endpoint(settings), tracer_provider=provider)
    try:
        async with serving(app) as client:
            exporter.clear()  # startup's own statements (the revision check) belong to no request
            yield Traced(client, exporter)
    finally:
        provider.shutdown()


@pytest.fixture
async def traced(backend: ScratchDatabase) -> AsyncIterator[Traced]:
    settings = make_settings(backend)
    async with traced_app(create_app(settings), settings) as traced:
        yield traced


def statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


def assert_statements_of(server: ReadableSpan, spans: Sequence[ReadableSpan], verb: str) -> None:
    """Every other span is a statement run by this request: a child of its server span, within it."""
    assert spans, "the request ran no traced statement"
    assert server.start_time is not None
    assert server.end_time is not None
    for span in spans:
        assert span.kind is SpanKind.CLIENT, span.name
        assert statement(span), (span.name, span.attributes)
        assert span.parent is not None, span.name
        assert span.parent.span_id == server.context.span_id, span.name
        assert span.context.trace_id == server.context.trace_id, span.name
        assert span.start_time is not None
        assert span.end_time is not None
        assert server.start_time <= span.start_time <= span.end_time <= server.end_time, span.name
    verbs = [statement(span).split(None, 1)[0].upper() for span in spans]
    assert verb in verbs, verbs


def status_of(span: ReadableSpan) -> Any:
    attributes = span.attributes or {}
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


def all_attribute_values(spans: Sequence[ReadableSpan]) -> str:
    return " ".join(str(value) for span in spans for value in (span.attributes or {}).values())


async def sign_up(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/users", json={"email": email, "name": "Traced User", "password": PASSWORD})


async def test_a_write_is_one_server_span_with_its_statements_as_children(traced: Traced) -> None:
    email = new_email("traced")
    response = await sign_up(traced.client, email)
    assert response.status_code == 201, response.text

    server, statements = traced.request()
    assert server.name == "POST /users"
    assert status_of(server) == 201
    # The unit of work: the transactional engine.
    assert_statements_of(server, statements, "INSERT")
    # Statements are traced as text with placeholders, never with the values bound to them.
    assert email not in all_attribute_values([server, *statements])
    assert PASSWORD not in all_attribute_values([server, *statements])
    # Off until the request-id middleware exists; from then on, the id the response carries.
    assert (server.attributes or {}).get(REQUEST_ID_ATTRIBUTE) == response.headers.get("x-request-id")


async def test_a_read_is_one_server_span_with_its_statements_as_children(traced: Traced) -> None:
    created = await sign_up(traced.client, new_email("traced"))
    assert created.status_code == 201, created.text
    traced.exporter.clear()

    response = await traced.client.get(f"/users/{created.json()['id']}", headers={"X-Request-ID": "trace-read-1"})
    assert response.status_code == 200, response.text

    server, statements = traced.request()
    assert server.name == "GET /users/{user_id}"
    assert (server.attributes or {}).get("http.route") == "/users/{user_id}"
    assert status_of(server) == 200
    # The request's connection: the autocommit engine.
    assert_statements_of(server, statements, "SELECT")
    if response.headers.get("x-request-id"):
        assert (server.attributes or {})[REQUEST_ID_ATTRIBUTE] == response.headers["x-request-id"]


async def test_health_checks_are_not_traced(traced: Traced) -> None:
    for path in ("/health/live", "/health/ready"):
        response = await traced.client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert not [span for span in traced.exporter.get_finished_spans() if span.kind is SpanKind.SERVER], path
    traced.exporter.clear()
    # The same client, on another route, is traced.
    assert (await traced.client.get(f"/users/{MISSING_USER}")).status_code == 404
    server, _ = traced.request()
    assert status_of(server) == 404


class NameRequests:
    """A stand-in for the request-id middleware: the id the client sent, in the context variable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = REQUEST_ID.set(Headers(scope=scope).get("x-request-id"))
        try:
            await self.app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)


async def test_the_request_id_is_an_attribute_of_the_server_span(backend: ScratchDatabase) -> None:
    settings = make_settings(backend)
    app = create_app(settings)
    # Added last, so outermost, as the real one is: the id is known before the route runs.
    app.add_middleware(NameRequests)
    async with traced_app(app, settings) as traced:
        response = await traced.client.get(f"/users/{MISSING_USER}", headers={"X-Request-ID": "trace-me-42"})
        assert response.status_code == 404, response.text
        server, _ = traced.request()
        assert (server.attributes or {}).get(REQUEST_ID_ATTRIBUTE) == "trace-me-42"


# Run in a fresh interpreter: in this one the suite has imported the SDK long ago.
_UNSET_THEN_SET = """
import json, sys
from app.config import load_settings
from app.main import create_app
from app.tracing import install_tracing

def state(app):
    engines = (app.state.db.engine.sync_engine, app.state.db.autocommit_engine.sync_engine)
    return {
        "middleware": len(app.user_middleware),
        "listeners": [len(engine.dispatch.before_cursor_execute) for engine in engines],
        "instrumented": bool(getattr(app, "_is_instrumented_by_opentelemetry", False)),
    }

def loaded():
    return sorted(name for name in sys.modules if name.startswith(tuple(sys.argv[3:])))

report = {}
for label, endpoint in (("unset", None), ("set", sys.argv[2])):
    settings = load_settings(_env_file=None, database_url=sys.argv[1], otel_exporter_otlp_endpoint=endpoint)
    app = create_app(settings.model_copy(update={"otel_exporter_otlp_endpoint": None}))
    before = state(app)
    install_tracing(app, app.state.db, settings)
    report[label] = {"before": before, "after": state(app), "loaded": loaded()}
print(json.dumps(report))
"""


def test_unset_it_installs_nothing_and_imports_nothing(tmp_path: Path) -> None:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    environment.pop("DATABASE_URL", None)
    database_url = f"sqlite:///{tmp_path / 'unused.db'}"
    result = subprocess.run(  # noqa: S603 -- this interpreter, a script of ours
        [sys.executable, "-c", _UNSET_THEN_SET, database_url, ENDPOINT, *EXTRA_MODULES],
        cwd=tmp_path,  # no .env here
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    unset = report["unset"]
    assert unset["after"] == unset["before"], unset
    assert not unset["after"]["instrumented"]
    assert unset["loaded"] == [], unset["loaded"]
    # The same checks see tracing when it is on: they are not blind.
    traced = report["set"]
    assert traced["after"]["middleware"] == traced["before"]["middleware"] + 1, traced
    assert traced["after"]["listeners"] == [count + 1 for count in traced["before"]["listeners"]], traced
    assert traced["after"]["instrumented"]
    assert "opentelemetry.sdk.trace" in traced["loaded"]
    assert "opentelemetry.instrumentation.fastapi" in traced["loaded"]
    assert "opentelemetry.exporter.otlp.proto.http.trace_exporter" in traced["loaded"]


@pytest.mark.parametrize(
    "missing",
    ["opentelemetry.instrumentation.fastapi", "opentelemetry.exporter.otlp.proto.http.trace_exporter"],
)
def test_set_without_the_extra_is_a_configuration_error(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    app = create_app(settings)
    middleware = list(app.user_middleware)
    monkeypatch.setitem(sys.modules, missing, None)  # what an import finds when the package is absent
    with pytest.raises(ConfigError) as raised:
        install_tracing(app, app.state.db, with_endpoint(settings))
    message = str(raised.value)
    assert message.startswith("configuration error: OTEL_EXPORTER_OTLP_ENDPOINT"), message
    assert "pip install '.[otel]'" in message
    assert "\n" not in message
    # Refused before touching the app.
    assert app.user_middleware == middleware
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_spans_go_to_the_traces_path_of_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert traces_endpoint("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_endpoint("https://collector.example/otlp/") == "https://collector.example/otlp/v1/traces"
    # The per-signal variable, when set, is the whole URL (OpenTelemetry's rule).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://elsewhere:4318/custom")
    assert traces_endpoint("http://collector:4318") == "http://elsewhere:4318/custom"
