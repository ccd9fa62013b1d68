"""The unit of work under faults: failed commits, unreachable databases, an exhausted pool."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from starlette.types import Message, Receive, Scope, Send

from app.database import SessionDep
from app.main import create_app
from tests.conftest import PASSWORD, count_users, make_settings, new_email, serving
from tests.databases import ScratchDatabase


async def test_a_commit_that_fails_is_never_answered_with_2xx(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    def fail_commit(session: Session) -> None:
        raise OperationalError("COMMIT", None, ConnectionResetError("connection lost during COMMIT"))

    email = new_email("uncommitted")
    event.listen(Session, "before_commit", fail_commit)
    try:
        response = await client.post("/users", json={"email": email, "name": "Ghost", "password": PASSWORD})
    finally:
        event.remove(Session, "before_commit", fail_commit)
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert await count_users(session_factory, email) == 0


async def test_a_write_is_committed_before_the_response_starts(
    app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    order: list[str] = []

    async def recording_app(scope: Scope, receive: Receive, send: Send) -> None:
        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                order.append("response starts")
            await send(message)

        await app(scope, receive, recording_send)

    def record_commit(session: Session) -> None:
        if not session.in_nested_transaction():  # a SAVEPOINT released is not the commit
            order.append("commit")

    event.listen(Session, "after_commit", record_commit)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(recording_app), base_url="http://test") as client:
            email = new_email("committed")
            response = await client.post("/users", json={"email": email, "name": "Kept", "password": PASSWORD})
    finally:
        event.remove(Session, "after_commit", record_commit)
    assert response.status_code == 201
    assert order == ["commit", "response starts"]
    assert await count_users(session_factory, email) == 1


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def _unreachable_urls(backend: ScratchDatabase, silent_port: int) -> list[str]:
    if backend.server == "sqlite":
        return ["sqlite:////nonexistent-directory/blog.db"]
    scheme = "postgresql" if backend.server == "postgresql" else "mysql"
    user = "postgres" if backend.server == "postgresql" else "root"
    refused = f"{scheme}://{user}@127.0.0.1:1/app"
    silent = f"{scheme}://{user}@127.0.0.1:{silent_port}/app"
    return [refused, silent]


async def test_unreachable_database_is_a_prompt_503(backend: ScratchDatabase, silent_server: int) -> None:
    for url in _unreachable_urls(backend, silent_server):
        app = create_app(make_settings(backend, database_url=url, db_pool_timeout=1.0))
        async with serving(app) as client:
            assert (await client.get("/health/live")).status_code == 200
            for method, path, payload in [
                ("GET", "/users", None),
                ("POST", "/users", {"email": new_email(), "name": "N", "password": PASSWORD}),
                ("GET", "/health/ready", None),
            ]:
                started = time.perf_counter()
                response = await client.request(method, path, json=payload)
                elapsed = time.perf_counter() - started
                assert response.status_code == 503, (url, path, response.text)
                assert int(response.headers["retry-after"]) > 0
                assert "Traceback" not in response.text
                assert elapsed < 5, (url, path, elapsed)


async def test_exhausted_pool_is_a_503_within_the_pool_timeout(backend: ScratchDatabase) -> None:
    """Reads and writes have a pool each; either one exhausted is a prompt 503, not a hang."""
    app = create_app(make_settings(backend, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5))
    database = app.state.db
    async with serving(app) as client:
        for engine, method, path, payload in [
            (database.autocommit_engine, "GET", "/users", None),
            (database.engine, "POST", "/users", {"email": new_email(), "name": "Busy", "password": PASSWORD}),
        ]:
            async with engine.connect() as held:
                await held.execute(text("SELECT 1"))
                started = time.perf_counter()
                response = await client.request(method, path, json=payload)
                elapsed = time.perf_counter() - started
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"] == "1"
            assert response.json()["detail"].startswith("The database is busy")
            assert 0.4 < elapsed < 3
        # The connections are back: service resumes without a restart.
        assert (await client.get("/users")).status_code == 200
        created = await client.post("/users", json={"email": new_email(), "name": "Later", "password": PASSWORD})
        assert created.status_code == 201


async def test_unexpected_errors_are_a_bare_500_logged_once(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode() -> Any:
        raise RuntimeError("secret internals")

    app.add_api_route("/_explode", explode)
    try:
        # The client transport raises whatever the app lets escape: Starlette's own last resort
        # answered the 500 and then raised the error again, for the server to log a second time.
        with caplog.at_level(logging.ERROR):
            response = await client.get("/_explode")
    finally:
        app.router.routes.pop()
    assert response.status_code == 500
    # The id a user can quote is the one the response carries and the log line has.
    request_id = response.headers["x-request-id"]
    assert response.json() == {"detail": "Internal Server Error", "code": "internal_error", "request_id": request_id}
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].__dict__["path"] == "/_explode"


async def test_a_statement_that_outlives_the_command_timeout_is_a_503(backend: ScratchDatabase) -> None:
    app = create_app(make_settings(backend, db_command_timeout=1.0))
    slow_sql = {"postgresql": "SELECT pg_sleep(10)", "mariadb": "SELECT SLEEP(10)"}

    async def stall(session: SessionDep) -> dict[str, bool]:
        if backend.server == "sqlite":
            # A file database's form of a stalled server: a lock someone else holds.
            await session.execute(
                text("INSERT INTO users (email, name, slug, password_hash) VALUES ('w@x.io', 'w', 'w', 'x')")
            )
        else:
            await session.execute(text(slow_sql[backend.server]))
        return {"done": True}

    app.add_api_route("/_stall", stall, methods=["POST"])
    async with serving(app) as client:
        async with app.state.db.engine.connect() as blocker:
            if backend.server == "sqlite":
                await blocker.execute(
                    text("INSERT INTO users (email, name, slug, password_hash) VALUES ('b@x.io', 'b', 'b', 'x')")
                )
            started = time.perf_counter()
            response = await client.post("/_stall")
            elapsed = time.perf_counter() - started
            await blocker.rollback()
        assert response.status_code == 503, response.text
        assert 0.9 < elapsed < 5
        # Counted as what it was: the database took too long (SQLite: its lock was not granted).
        reason = "locked" if backend.server == "sqlite" else "timeout"
        assert f'db_errors_total{{reason="{reason}"}} 1.0' in (await client.get("/metrics")).text
        # The pool recovers: the next request is served normally.
        assert (await client.get("/users")).status_code == 200


@pytest.mark.backends("postgresql", "mariadb")
async def test_a_server_refusing_connections_is_a_503(backend: ScratchDatabase) -> None:
    """Too many connections -- what a busy or restarting server answers -- is not our bug: 503."""
    role = f"limited_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(backend.own_url, isolation_level="AUTOCOMMIT")
    if backend.server == "postgresql":
        setup = [f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"]
        teardown = [f"DROP ROLE {role}"]
        url = backend.url.set(username=role, password=None)
    else:
        setup = [
            f"CREATE USER '{role}'@'%' WITH MAX_USER_CONNECTIONS 1",
            f"GRANT ALL ON `{backend.url.database}`.* TO '{role}'@'%'",
        ]
        teardown = [f"DROP USER '{role}'@'%'"]
        url = backend.url.set(username=role, password=None)
    async with admin.connect() as connection:
        for statement in setup:
            await connection.execute(text(statement))
    try:
        app = create_app(make_settings(backend, database_url=url.render_as_string(hide_password=False)))
        async with serving(app) as client:
            if backend.server == "mariadb":
                # The one connection this user may have is taken.
                async with app.state.db.engine.connect() as taken:
                    await taken.execute(text("SELECT 1"))
                    other = create_app(make_settings(backend, database_url=url.render_as_string(hide_password=False)))
                    async with serving(other) as second:
                        response = await second.get("/users")
                        metrics = (await second.get("/metrics")).text
            else:
                response = await client.get("/users")
                metrics = (await client.get("/metrics")).text
        assert response.status_code == 503, response.text
        assert "retry-after" in response.headers
        assert 'db_errors_total{reason="too_many_connections"} 1.0' in metrics
    finally:
        async with admin.connect() as connection:
            for statement in teardown:
                await connection.execute(text(statement))
        await admin.dispose()


async def _admin_scalar(backend: ScratchDatabase, sql: str) -> Any:
    admin = create_async_engine(backend.own_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            return await connection.scalar(text(sql))
    finally:
        await admin.dispose()


async def _connection_marker(backend: ScratchDatabase) -> Any:
    """Something every connection opened from now on exceeds: a time (PostgreSQL), an id (MariaDB)."""
    return await _admin_scalar(backend, "SELECT now()" if backend.server == "postgresql" else "SELECT CONNECTION_ID()")


async def _drop_connections_opened_since(backend: ScratchDatabase, marker: Any) -> int:
    """What a database restart or failover does to pooled connections: closes them. Only those this
    test opened -- the suite's own app shares the database."""
    admin = create_async_engine(backend.own_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            if backend.server == "postgresql":
                killed = await connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND backend_start > :marker"
                    ),
                    {"marker": marker},
                )
                return len(killed.all())
            others = (
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID() AND id > :marker"
            )
            ids = (await connection.scalars(text(others), {"marker": marker})).all()
            for connection_id in ids:
                await connection.execute(text(f"KILL {int(connection_id)}"))
            return len(ids)
    finally:
        await admin.dispose()


@pytest.mark.backends("postgresql", "mariadb")
async def test_connections_dropped_by_the_server_cost_at_most_a_503_each(backend: ScratchDatabase) -> None:
    """Without pre-ping (the default) a dead pooled connection is found by the request that uses it:
    that request is a 503 with Retry-After -- never a 500, never a hang -- and the pool starts over."""
    marker = await _connection_marker(backend)
    app = create_app(make_settings(backend))
    async with serving(app) as client:
        # Several connections in the pool, all about to be dropped.
        warm = await asyncio.gather(*(client.get("/users") for _ in range(8)))
        assert {response.status_code for response in warm} == {200}
        assert await _drop_connections_opened_since(backend, marker) >= 1
        answers = []
        for _ in range(12):
            response = await client.get("/users")
            answers.append(response.status_code)
            if response.status_code == 503:
                assert int(response.headers["retry-after"]) > 0
        assert set(answers) <= {200, 503}, answers
        # The first failure invalidates the whole pool: everything after it is served.
        assert answers[-6:] == [200] * 6, answers
        assert answers.count(503) <= 2, answers
