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
from sqlalchemy.engine import Connection

from app.engines import create_migrations_engine
from app.migration_lock import migration_lock
from app.models import Post
from tests.cli.runner import blogapi, one_line_failure
from tests.conftest import PASSWORD, SECRET_KEY, make_settings
from tests.databases import ScratchDatabase, run_async
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
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
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
                    outcomes[type(exc).__name__] += 1

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


def test_startup_migration_behind_pgbouncer_needs_the_direct_address(backend: ScratchDatabase, tmp_path: Path) -> None:
    environment = {"DATABASE_URL": backend.url_string, "DB_PGBOUNCER": "true", "SECRET_KEY": SECRET_KEY}
    result = blogapi("check-config", cwd=tmp_path, **environment)
    assert result.returncode == 0, result.stderr  # a valid configuration: the refusal is the migration's

    line = one_line_failure(blogapi("db", "upgrade", cwd=tmp_path, **environment))
    assert line.startswith("migration refused: DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL"), line

    line = one_line_failure(blogapi("serve", "--port", str(free_port()), cwd=tmp_path, **environment))
    assert line.startswith("migration refused: DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL"), line


def _advisory_locks_held(connection: Connection) -> int:
    with migration_lock(connection, timeout=5):
        # The lock is a session's: held on this very connection only if it is PostgreSQL's own.
        statement = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return int(connection.scalar(statement) or 0)


def test_migrations_and_their_lock_go_to_postgresql_itself(backend: ScratchDatabase) -> None:
    settings = make_settings(backend)
    assert settings.db_pgbouncer

    async def lock() -> tuple[int | None, int]:
        engine = create_migrations_engine(settings)
        try:
            async with engine.connect() as connection:
                return engine.url.port, await connection.run_sync(_advisory_locks_held)
        finally:
            await engine.dispose()

    port, held = run_async(lock)
    assert port == backend.migrations_url.port != backend.url.port
    assert held == 1
