"""`alembic upgrade head --sql`: what a DBA would be handed. Linted, and proven equal to online."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from app.config import PROJECT_ROOT
from app.migrations import alembic_config
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread
from tests.test_stairway import snapshot

pytestmark = pytest.mark.migrations


def offline_sql(url: str) -> str:
    env = {**os.environ, "DATABASE_URL": url}
    command_line = [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"]
    result = subprocess.run(command_line, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return result.stdout


def test_postgresql_migrations_pass_squawk(tmp_path: Path) -> None:
    """Locks held too long, rewrites of big tables, missing timeouts: squawk's rules, see .squawk.toml."""
    script = tmp_path / "upgrade.sql"
    script.write_text(offline_sql("postgresql://user@db/app"))
    squawk = shutil.which("squawk", path=str(Path(sys.executable).parent))
    assert squawk is not None, "squawk-cli is a dev dependency"
    result = subprocess.run(  # noqa: S603
        [squawk, "--config", str(PROJECT_ROOT / ".squawk.toml"), str(script)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def two_databases(backend: ScratchDatabase) -> Iterator[tuple[ScratchDatabase, ScratchDatabase]]:
    online, offline = create_database(backend.backend), create_database(backend.backend)
    yield online, offline
    drop_database(online)
    drop_database(offline)


def _apply(database: ScratchDatabase, script: str) -> None:
    url = database.url
    if database.server == "postgresql":
        client = ["psql", "-v", "ON_ERROR_STOP=1", "-q", "-h", url.host or "", "-p", str(url.port or 5432)]
        client += ["-U", url.username or "postgres", "-d", url.database or ""]
    else:
        client = ["mariadb", "-h", url.host or "", "-P", str(url.port or 3306), "-u", url.username or "root"]
        client += [url.database or ""]
    env = {**os.environ, "PGPASSWORD": url.password or "", "MYSQL_PWD": url.password or ""}
    result = subprocess.run(client, input=script, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    assert result.returncode == 0, result.stderr


@pytest.mark.backends("postgresql", "mariadb")
def test_offline_sql_builds_the_same_schema_as_online(two_databases: tuple[ScratchDatabase, ScratchDatabase]) -> None:
    online, offline = two_databases
    in_thread(command.upgrade, alembic_config(online.url), "head")
    _apply(offline, offline_sql(offline.url_string))
    assert snapshot(offline) == snapshot(online)
    in_thread(command.check, alembic_config(offline.url))  # at head, and no drift from the models
