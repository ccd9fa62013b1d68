"""The migrations, driven through Alembic's own CLI as a person would, on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import PROJECT_ROOT
from app.migrations import alembic_config, head_revision
from tests.databases import ScratchDatabase, create_database, drop_database, run_async


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
