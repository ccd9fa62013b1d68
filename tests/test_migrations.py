"""The migrations, driven through Alembic's own CLI as a person would, on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import PROJECT_ROOT
from app.migrations import alembic_config, head_revision, upgrade_to_head
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread, run_async

pytestmark = pytest.mark.migrations


@pytest.fixture
def scratch(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    database = create_database(backend.backend)
    yield database
    drop_database(database)


def alembic(database: ScratchDatabase, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database.url_string}
    command = [sys.executable, "-m", "alembic", *args]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, f"alembic {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def tables(database: ScratchDatabase) -> set[str]:
    async def reflect() -> set[str]:
        engine = create_async_engine(database.url)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return run_async(reflect)


def test_upgrade_downgrade_and_back_with_no_drift(scratch: ScratchDatabase) -> None:
    head = head_revision()
    alembic(scratch, "upgrade", "head")
    assert f"{head} (head)" in alembic(scratch, "current")
    assert {"users", "posts", "comments"} <= tables(scratch)
    alembic(scratch, "check")  # models and migrations agree
    alembic(scratch, "downgrade", "base")
    assert tables(scratch) <= {"alembic_version"}
    assert alembic(scratch, "current").strip() == ""
    alembic(scratch, "upgrade", "+1")
    alembic(scratch, "downgrade", "-1")
    alembic(scratch, "upgrade", "head")
    alembic(scratch, "check")
    assert {"users", "alembic_version"} <= tables(scratch)


def test_history_and_offline_sql(scratch: ScratchDatabase) -> None:
    history = alembic(scratch, "history")
    assert "-> 0001" in history
    assert "create users" in history
    sql = alembic(scratch, "upgrade", "head", "--sql")
    assert "CREATE TABLE users" in sql
    assert "CREATE UNIQUE INDEX ix_users_email ON users (email)" in sql
    assert "CREATE TABLE posts" in sql
    assert "CREATE TABLE comments" in sql
    assert f"version_num='{head_revision()}'" in sql.replace(" = ", "=")
    # Offline mode writes SQL only: the database is untouched.
    assert "users" not in tables(scratch)


def test_there_is_a_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


def app_migrate(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m app migrate`, from a directory that is not the checkout."""
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "app", "migrate"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120)  # noqa: S603


def set_revision(database: ScratchDatabase, revision: str) -> None:
    async def update() -> None:
        engine = create_async_engine(database.url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": revision})
        finally:
            await engine.dispose()

    run_async(update)


def test_migrate_says_what_it_did(scratch: ScratchDatabase, tmp_path: Path) -> None:
    head = head_revision()
    first = app_migrate(scratch.url_string, tmp_path)
    assert (first.returncode, first.stdout) == (0, f"migrated 0000 -> {head}\n"), first.stderr
    assert {"users", "posts", "comments"} <= tables(scratch)
    again = app_migrate(scratch.url_string, tmp_path)
    assert (again.returncode, again.stdout) == (0, f"already at {head}\n"), again.stderr
    in_thread(command.downgrade, alembic_config(scratch.url), "0005")
    partial = app_migrate(scratch.url_string, tmp_path)
    assert (partial.returncode, partial.stdout) == (0, f"migrated 0005 -> {head}\n"), partial.stderr


def test_migrate_refuses_a_database_from_a_newer_release_in_one_line(scratch: ScratchDatabase, tmp_path: Path) -> None:
    in_thread(upgrade_to_head, scratch.url)
    set_revision(scratch, "9999_from_the_future")
    refused = app_migrate(scratch.url_string, tmp_path)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert refused.stderr.startswith("migration refused: the database is at revision 9999_from_the_future")
    assert refused.stderr.count("\n") == 1, refused.stderr


def test_migrate_failure_is_one_line_without_traceback(tmp_path: Path) -> None:
    failed = app_migrate(f"sqlite:///{tmp_path / 'missing-directory' / 'x.db'}", tmp_path)
    assert failed.returncode != 0
    assert failed.stdout == ""
    assert failed.stderr.startswith("migration failed: ")
    assert failed.stderr.count("\n") == 1, failed.stderr
