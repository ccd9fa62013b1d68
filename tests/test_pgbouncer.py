"""The service behind PgBouncer in transaction mode, as README "Scaling out" runs it.

The whole suite runs through PgBouncer as the `pgbouncer` backend; these tests add what only a
real deployment shows: a uvicorn process under sustained concurrent load (statements of one
client land on many server connections, and one server connection serves many clients), and
migrations that must bypass PgBouncer to keep their session lock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from app.engines import create_autocommit_engine, create_migrations_engine
from app.migrations import database_revision, head_revision
from app.models import Post
from tests.cli.runner import blogapi, one_line_failure
from tests.conftest import PASSWORD, SECRET_KEY, make_settings
from tests.databases import ScratchDatabase, create_database, drop_database, run_async
from tests.servers import free_port, served

pytestmark = pytest.mark.backends("pgbouncer")

CLIENTS = 64
SECONDS = 30


async def _client_session(client: httpx.AsyncClient, number: int) -> str:
    email = f"load{number}-{random.getrandbits(32)}@example.com"
    created = await client.post("/users", json={"email": email, "name": f"Load {number}", "password": PASSWORD})
    assert created.status_code == 201, created.text
    token = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


async def _mixed_load(url: str) -> tuple[Counter[str], set[int]]:
    """CLIENTS clients for SECONDS: reads, one-statement writes and units of work, interleaved."""
    outcomes: Counter[str] = Counter()
    acknowledged: set[int] = set()
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive would: at equal
    # timeouts a request sent on a connection the server is closing is reset (a ReadError, once in
    # a CI run), which is the client's race, not the service's.
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        tokens = [await _client_session(client, number) for number in range(CLIENTS)]
        deadline = time.monotonic() + SECONDS

        async def one_client(token: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            mine: list[int] = []
            while time.monotonic() < deadline:
                roll = random.random()
                try:
                    if roll < 0.2 or not mine:
                        response = await client.post(
                            "/posts", json={"title": "Load", "content": "through pgbouncer"}, headers=headers
                        )
                        if response.status_code == 201:
                            mine.append(response.json()["id"])
                            acknowledged.add(response.json()["id"])
                    elif roll < 0.3:
                        post_id = random.choice(mine)
                        response = await client.patch(f"/posts/{post_id}", json={"title": "Edited"}, headers=headers)
                    elif roll < 0.4:
                        post_id = random.choice(mine)
                        response = await client.post(f"/posts/{post_id}/comments", json={"body": "hi"}, headers=headers)
                    elif roll < 0.5:
                        response = await client.post(f"/posts/{random.choice(mine)}/views")
                    elif roll < 0.7:
                        response = await client.get(f"/posts/{random.choice(mine)}")
                    elif roll < 0.85:
                        response = await client.get("/posts", params={"limit": 20})
                    else:
                        response = await client.get("/users/me", headers=headers)
                    outcomes[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    outcomes[f"{type(exc).__name__} on {exc.request.method} {exc.request.url.path}"] += 1

        await asyncio.gather(*(one_client(token) for token in tokens))
    return outcomes, acknowledged


def test_sustained_mixed_load_through_pgbouncer_sees_no_errors(backend: ScratchDatabase, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    environment = {**backend.environment, "RATE_LIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}
    with served(environment.pop("DATABASE_URL"), log, **environment) as server:
        outcomes, acknowledged = asyncio.run(_mixed_load(server.url))

    failures = {outcome: count for outcome, count in outcomes.items() if outcome not in ("200", "201")}
    assert failures == {}, (failures, log.read_text()[-3000:])
    assert sum(outcomes.values()) > CLIENTS * 10, outcomes  # it was load, not a handful of requests
    assert "Traceback" not in log.read_text()

    async def stored() -> int:
        engine = create_migrations_engine(make_settings(backend))
        try:
            async with engine.connect() as connection:
                count = await connection.scalar(select(func.count()).where(Post.id.in_(acknowledged)))
                return int(count or 0)
        finally:
            await engine.dispose()

    assert run_async(stored) == len(acknowledged)


def test_without_the_direct_address_migrating_is_refused_in_one_line(backend: ScratchDatabase, tmp_path: Path) -> None:
    environment = {"DATABASE_URL": backend.url_string, "DB_PGBOUNCER": "true", "SECRET_KEY": SECRET_KEY}
    # Migrating at startup (the default), such a configuration could never start: refused as one.
    for command in (["check-config"], ["serve", "--port", str(free_port())]):
        line = one_line_failure(blogapi(*command, cwd=tmp_path, **environment))
        assert line.startswith("configuration error: DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL"), line

    environment["MIGRATE_ON_STARTUP"] = "false"
    assert blogapi("check-config", cwd=tmp_path, **environment).returncode == 0
    refusals = {
        ("db", "upgrade"): "migration refused",
        ("db", "check"): "migration refused",
        ("seed", "--users", "1", "--posts", "0", "--comments", "0"): "seed refused",
    }
    for arguments, outcome in refusals.items():
        line = one_line_failure(blogapi(*arguments, cwd=tmp_path, **environment))
        assert line.startswith(f"{outcome}: DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL"), (arguments, line)


def _connected_directly(connection: Connection) -> bool:
    """PostgreSQL sees this socket itself, not PgBouncer's connection, on the other end."""
    local_port = connection.connection.driver_connection._transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
    return bool(connection.scalar(text("SELECT inet_client_port() = :port"), {"port": local_port}))


def _revision(url: URL) -> str | None:
    async def read() -> str | None:
        engine = create_async_engine(url)
        try:
            return await database_revision(engine)
        finally:
            await engine.dispose()

    return run_async(read)


def test_migrations_go_to_postgresql_itself_even_with_pgbouncer_down(backend: ScratchDatabase, tmp_path: Path) -> None:
    fresh = create_database(backend.backend)  # never migrated
    try:
        # The app's own address refuses connections: whatever migrates must use the direct one.
        closed = fresh.url.set(port=free_port()).render_as_string(hide_password=False)
        environment = {**fresh.environment, "DATABASE_URL": closed, "SECRET_KEY": SECRET_KEY}
        upgraded = blogapi("db", "upgrade", "0007", cwd=tmp_path, **environment)
        assert upgraded.returncode == 0, upgraded.stderr
        assert upgraded.stdout.strip() == "migrated 0000 -> 0007"
        assert _revision(fresh.own_url) == "0007"

        del environment["DATABASE_URL"]
        with served(closed, tmp_path / "server.log", **environment) as server:
            # Startup migrated to head; the app's own database address is down, so it is not ready.
            assert httpx.get(f"{server.url}/health/ready", timeout=30).status_code == 503
        assert _revision(fresh.own_url) == head_revision()

        async def direct() -> bool:
            engine = create_migrations_engine(make_settings(fresh))
            try:
                async with engine.connect() as connection:
                    return await connection.run_sync(_connected_directly)
            finally:
                await engine.dispose()

        assert run_async(direct)
    finally:
        drop_database(fresh)


def test_an_app_left_with_named_statements_fails_through_pgbouncer(backend: ScratchDatabase) -> None:
    """The control: without DB_PGBOUNCER the same traffic breaks, so the tests above can fail."""

    async def traffic() -> Counter[str]:
        engine = create_autocommit_engine(make_settings(backend, db_pgbouncer=False))
        outcomes: Counter[str] = Counter()

        async def client(number: int) -> None:
            for round_ in range(20):
                try:
                    async with engine.connect() as connection:
                        statement = text(f"SELECT :n + {round_ % 3}")
                        await connection.scalar(statement, {"n": number})
                    outcomes["ok"] += 1
                except DBAPIError as exc:
                    outcomes[type(exc.orig).__name__] += 1

        try:
            await asyncio.gather(*(client(number) for number in range(40)))
        finally:
            await engine.dispose()
        return outcomes

    outcomes = run_async(traffic)
    assert sum(count for outcome, count in outcomes.items() if outcome != "ok") > 0, outcomes
