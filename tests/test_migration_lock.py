"""Migrating from many processes at once, and refusing schemas this code does not know."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.config import PROJECT_ROOT
from app.main import StartupError, create_app
from app.migration_lock import _PG_LOCK_KEY, MigrationLockTimeout, _file_lock, mariadb_lock_name
from app.migrations import alembic_config, head_revision
from tests.conftest import SECRET_KEY, make_settings
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread

pytestmark = pytest.mark.migrations

REVISIONS = len(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))


@pytest.fixture
def empty_database(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    database = create_database(backend.backend)
    yield database
    drop_database(database)


def _free_ports(count: int) -> list[int]:
    """Distinct ports free now, below the kernel's ephemeral range.

    Ports from bind(0) come from that range: the same one can come back twice once its probe is
    closed, and the test's own health-check connections draw their local ports from it while the
    servers are still starting -- either way a server could find its port taken and exit.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports: list[int] = []
    for port in random.sample(range(max(1024, low - 12_000), low), k=4 * count):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"fewer than {count} free ports below {low}")


def test_eight_processes_starting_at_once_migrate_exactly_once(empty_database: ScratchDatabase, tmp_path: Path) -> None:
    # The app logs to stderr itself, under plain uvicorn too: one line per applied revision.
    env = {
        **os.environ,
        "DATABASE_URL": empty_database.url_string,
        "MIGRATE_ON_STARTUP": "true",
        "SECRET_KEY": SECRET_KEY,
    }
    ports = _free_ports(8)
    processes = [
        subprocess.Popen(  # noqa: S603 -- the test's own interpreter and arguments
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 90
        waiting = set(ports)
        while waiting and time.monotonic() < deadline:
            for port in list(waiting):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                        waiting.discard(port)
                except httpx.HTTPError:
                    pass
            exited = [process for process in processes if process.poll() is not None]
            assert not exited, f"a process exited during startup:\n{exited[0].communicate()[1][-3000:]}"
            time.sleep(0.2)
        assert not waiting, f"not serving after 90 s: {sorted(waiting)}"
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/posts", timeout=5).status_code == 200
    finally:
        for process in processes:
            process.terminate()
        logs = [process.communicate(timeout=30)[1] for process in processes]
    applied = [line for log in logs for line in log.splitlines() if "applied revision" in line]
    assert len(applied) == REVISIONS, applied
    assert len({line.rsplit(" ", 1)[-1] for line in applied}) == REVISIONS


@asynccontextmanager
async def holding_the_lock(database: ScratchDatabase) -> AsyncIterator[None]:
    """Another migrator, in the middle of its work."""
    if database.server == "sqlite":
        with _file_lock(Path(database.url.database or ""), timeout=1):
            yield
        return
    engine = create_async_engine(database.url)
    try:
        async with engine.connect() as connection:
            await _take(connection, database.server)
            yield
    finally:
        await engine.dispose()


async def _take(connection: AsyncConnection, backend: str) -> None:
    if backend == "postgresql":
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
    else:
        name = mariadb_lock_name(connection.engine.url.database)
        await connection.execute(text("SELECT GET_LOCK(:name, 1)"), {"name": name})


async def test_waiting_for_the_lock_is_bounded(empty_database: ScratchDatabase) -> None:
    config = alembic_config(empty_database.url)
    config.attributes["migration_lock_timeout"] = 1.0
    async with holding_the_lock(empty_database):
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout, match="MIGRATION_LOCK_TIMEOUT"):
            in_thread(command.upgrade, config, "head")
        assert 0.9 < time.monotonic() - started < 10
    # Once the other migrator is done, the same command goes through.
    in_thread(command.upgrade, config, "head")
    # At head there is nothing to wait for: the command returns without touching the lock.
    async with holding_the_lock(empty_database):
        started = time.monotonic()
        in_thread(command.upgrade, config, "head")
        assert time.monotonic() - started < 0.9


async def _set_revision(app: FastAPI, revision: str) -> None:
    async with app.state.db.engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision})


async def test_a_database_from_a_newer_release_is_refused(empty_database: ScratchDatabase) -> None:
    in_thread(command.upgrade, alembic_config(empty_database.url), "head")
    app = create_app(make_settings(empty_database))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        assert (await client.get("/health/ready")).status_code == 200
        await _set_revision(app, "9999_from_the_future")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["revision"] == "9999_from_the_future"
        assert ready.json()["expected_revision"] == head_revision()
    for migrate_on_startup in (True, False):
        app = create_app(make_settings(empty_database, migrate_on_startup=migrate_on_startup))
        with pytest.raises(StartupError, match="which this code does not know: a newer release migrated it"):
            async with app.router.lifespan_context(app):
                pass
