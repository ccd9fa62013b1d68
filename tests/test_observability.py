"""What an operator sees, through the app in process: request ids, log lines, metrics, slow statements.

Real server processes (plain uvicorn, two workers, an outage) are in tests/test_operations_server.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from app.database import ConnectionDep
from app.log_lines import JsonFormatter
from app.main import create_app
from app.metrics import Metrics
from tests.conftest import PASSWORD, NewAccount, make_settings, new_email, serving
from tests.databases import ScratchDatabase
from tests.servers import free_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@contextmanager
def json_lines() -> Iterator[list[dict[str, Any]]]:
    """The lines the app's JSON format writes while the block runs, parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


async def test_a_sane_request_id_is_kept_and_any_other_replaced(client: httpx.AsyncClient) -> None:
    kept = ["a", "abc-123", "trace.id:7_x", "Z" * 128]
    for request_id in kept:
        response = await client.get("/users/1", headers={"X-Request-ID": request_id})
        assert response.headers["x-request-id"] == request_id
    replaced = ["", "has space", "Z" * 129, "ünï", "a/b", "a,b", "<script>"]
    for request_id in replaced:
        response = await client.get("/users/1", headers=[(b"X-Request-ID", request_id.encode())])
        generated = response.headers["x-request-id"]
        assert generated != request_id
        assert str(uuid.UUID(generated)) == generated
    # No id sent: a fresh one per request.
    first, second = (await client.get("/posts"), await client.get("/posts"))
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_every_kind_of_response_carries_its_request_id(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/no/such/route"),
        await client.delete("/posts"),
        await client.post("/users", json={"email": "not an email"}),
        await client.post("/users", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}),
        await client.get("/health/live"),
    ]
    assert [r.status_code for r in responses] == [404, 405, 422, 413, 200]
    for response in responses:
        uuid.UUID(response.headers["x-request-id"])


async def test_every_line_logged_while_serving_a_request_carries_its_id(client: httpx.AsyncClient) -> None:
    with json_lines() as lines:
        await client.get("/users/123456", headers={"X-Request-ID": "req-1"})
        await client.post("/users", json={"email": new_email(), "name": "Ann", "password": PASSWORD})
    access = [line for line in lines if line["logger"] == "app.access"]
    assert len(access) == 2
    first, second = access
    assert first["request_id"] == "req-1"
    assert first["route"] == "/users/{user_id}"  # the template, never the raw path
    assert first["status"] == 404
    assert first["method"] == "GET"
    assert first["level"] == "INFO"
    assert first["message"] == "request"
    assert isinstance(first["duration_ms"], float)
    assert first["client"]
    assert first["timestamp"].endswith("Z")
    assert second["route"] == "/users"
    assert second["status"] == 201
    assert uuid.UUID(second["request_id"])


async def test_probes_and_scrapes_are_logged_at_debug_only(client: httpx.AsyncClient) -> None:
    with json_lines() as lines:
        await client.get("/health/live")
        await client.get("/metrics")
    assert [line for line in lines if line["logger"] == "app.access"] == []
    access = logging.getLogger("app.access")
    with json_lines() as lines:
        previous = access.level
        access.setLevel(logging.DEBUG)
        try:
            await client.get("/health/live")
        finally:
            access.setLevel(previous)
    assert [(line["level"], line["route"]) for line in lines if line["logger"] == "app.access"] == [
        ("DEBUG", "/health/live")
    ]


async def test_the_counters_move_by_exactly_what_was_asked(client: httpx.AsyncClient, new_account: NewAccount) -> None:
    account = await new_account()
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/users/{account.id}")).status_code == 200
    assert (await client.get("/users/999999")).status_code == 404
    for _ in range(2):
        created = await client.post("/users", json={"email": new_email(), "name": "N", "password": PASSWORD})
        assert created.status_code == 201
    assert (await client.get("/no/such/route")).status_code == 404
    assert (await client.request("BREW", "/posts")).status_code == 405
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("http_requests_total", method="GET", route="/users/{user_id}", status="200") == 3
    assert moved("http_requests_total", method="GET", route="/users/{user_id}", status="404") == 1
    assert moved("http_requests_total", method="POST", route="/users", status="201") == 2
    assert moved("http_requests_total", method="GET", route="unmatched", status="404") == 1
    # An invented method is counted, but as one label value whatever it is.
    assert moved("http_requests_total", method="OTHER", route="/posts", status="405") == 1
    # The scrape before this one counted itself too.
    assert moved("http_requests_total", method="GET", route="/metrics", status="200") == 1
    assert moved("http_request_duration_seconds_count", method="GET", route="/users/{user_id}") == 4
    assert moved("http_request_duration_seconds_sum", method="GET", route="/users/{user_id}") > 0
    # Each sign-up inserts a row; each read selects.
    assert moved("db_statement_duration_seconds_count", operation="insert") >= 2
    assert moved("db_statement_duration_seconds_count", operation="select") >= 4
    assert moved("db_pool_wait_seconds_count", pool="autocommit") >= 4
    assert value(after, "app_info", version="0.1.0", schema_revision="0008") == 1


async def test_the_pool_gauges_follow_connections_and_waiters(backend: ScratchDatabase) -> None:
    app = create_app(make_settings(backend, db_pool_size=2, db_max_overflow=1, db_pool_timeout=0.5))
    async with serving(app) as client, AsyncExitStack() as held:
        gate = app.state.db.gate
        for _ in range(3):
            connection = await gate.checkout()
            held.push_async_callback(gate.checkin, connection)
        # All three (two of the pool, one overflow) are in use; a request now waits, then fails.
        waiting = asyncio.create_task(client.get("/posts"))
        await asyncio.sleep(0.2)
        during = _scrape_outside(app)
        response = await waiting
        assert response.status_code == 503
        assert response.json()["code"] == "database_busy"
        after = await scrape(client)
    assert value(during, "db_pool_connections", pool="autocommit", state="in_use") == 2
    assert value(during, "db_pool_connections", pool="autocommit", state="overflow") == 1
    assert value(during, "db_pool_waiters", pool="autocommit") == 1
    assert value(after, "db_pool_waiters", pool="autocommit") == 0
    assert value(after, "db_errors_total", reason="pool_exhausted") == 1
    assert value(after, "http_requests_total", method="GET", route="/posts", status="503") == 1


def _scrape_outside(app: FastAPI) -> Samples:
    """The metrics as a scrape would see them, without a request of its own (the pool is full)."""
    metrics: Metrics = app.state.metrics
    body, _ = metrics.exposition(None)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


@pytest.mark.backends("postgresql", "mariadb")
async def test_an_unreachable_database_is_counted_and_logged_a_bounded_number_of_times(
    backend: ScratchDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    url = backend.url.set(port=free_port()).render_as_string(hide_password=False)
    app = create_app(make_settings(backend, database_url=url, db_pool_timeout=1.0))
    app.state.database_outages.interval = 0.5
    async with serving(app) as client:
        with caplog.at_level(logging.WARNING, logger="app"):
            statuses = [(await client.get("/users/1")).status_code for _ in range(200)]
            await asyncio.sleep(0.7)  # the interval's count comes from a timer
        after = await scrape(client)
    assert statuses == [503] * 200
    outage = [record for record in caplog.records if record.getMessage().startswith("database unavailable")]
    assert 2 <= len(outage) <= 10, [record.getMessage() for record in outage]
    assert outage[0].__dict__["reason"] == "unavailable"
    assert outage[0].exc_info is None
    # Every failure is in a line: each one logged at once, and the counts of the others.
    repeated = sum(record.__dict__.get("repeated", 0) for record in outage)
    logged_at_once = len([record for record in outage if "repeated" not in record.__dict__])
    assert repeated + logged_at_once == 200
    assert value(after, "db_errors_total", reason="unavailable") == 200
    assert value(after, "http_requests_total", method="GET", route="/users/{user_id}", status="503") == 200


async def test_a_slow_statement_is_logged_with_its_sql_and_without_its_parameters(backend: ScratchDatabase) -> None:
    app = create_app(make_settings(backend, db_slow_query_ms=100))
    slow: dict[str, tuple[str, dict[str, float]]] = {
        "postgresql": ("SELECT pg_sleep(:seconds)", {"seconds": 0.3}),
        "mariadb": ("SELECT SLEEP(:seconds)", {"seconds": 0.3}),
        # No sleep in SQLite: counting to a few million takes long enough.
        "sqlite": (
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :limit) SELECT count(*) FROM n",
            {"limit": 3_000_000},
        ),
    }
    sql, parameters = slow[backend.server]

    async def stall(connection: ConnectionDep) -> dict[str, bool]:
        await connection.execute(text(sql), parameters)
        await connection.execute(text("SELECT 1"))
        return {"done": True}

    app.add_api_route("/_slow", stall)
    async with serving(app) as client:
        with json_lines() as lines:
            response = await client.get("/_slow")
    assert response.status_code == 200
    slow_lines = [line for line in lines if line["message"] == "slow statement"]
    assert len(slow_lines) == 1, slow_lines
    (line,) = slow_lines
    assert line["level"] == "WARNING"
    assert line["logger"] == "app.database"
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["duration_ms"] >= 100
    # WITH ... SELECT is a select too.
    assert line["operation"] == "select"
    assert line["statement"] == sql.replace(":seconds", "$1" if backend.server == "postgresql" else "%s").replace(
        ":limit", "?"
    )
    logged = json.dumps({key: field for key, field in line.items() if key != "duration_ms"})
    for parameter in parameters.values():
        assert str(parameter) not in logged


async def test_metrics_can_be_switched_off(backend: ScratchDatabase) -> None:
    app = create_app(make_settings(backend, metrics_enabled=False))
    async with serving(app) as client:
        response = await client.get("/metrics")
        assert response.status_code == 404
        assert "x-request-id" in response.headers
        assert (await client.get("/posts")).status_code == 200
    assert "/metrics" not in app.openapi()["paths"]


@pytest.mark.backends("postgresql")
async def test_statements_are_timed_without_engine_events(backend: ScratchDatabase) -> None:
    # An engine with listeners of its own makes SQLAlchemy join them onto every new Connection and
    # check them at every step (about 20 µs a request): the timer listens on the dialect instead.
    # The transactional engine of SQLite has a "begin" listener of its own; PostgreSQL's have none.
    # A fresh app: other tests attach statement counters to the shared one, and SQLAlchemy keeps an
    # engine marked as having events after its listeners are removed.
    app = create_app(make_settings(backend))
    async with serving(app) as client:
        assert (await client.get("/posts")).status_code == 200
        assert not app.state.db.autocommit_engine.sync_engine._has_events
        assert not app.state.db.engine.sync_engine._has_events
