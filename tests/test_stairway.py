"""Every revision, in order: up, down, up -- and down must give back exactly the schema before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrations import alembic_config
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread, run_async

pytestmark = pytest.mark.migrations

Schema = dict[str, Any]


def _reflect(connection: Connection) -> Schema:
    inspector = inspect(connection)
    schema: Schema = {}
    # alembic_version is Alembic's bookkeeping: it stays (empty) after the last downgrade.
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        schema[table] = {
            "columns": [
                (column["name"], repr(column["type"]), column["nullable"], str(column.get("default")))
                for column in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (index["name"] or "", tuple(index["column_names"]), bool(index["unique"]))
                for index in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (constraint["name"] or "", tuple(constraint["column_names"]))
                for constraint in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (
                    key["name"] or "",
                    tuple(key["constrained_columns"]),
                    key["referred_table"],
                    str(key.get("options", {}).get("ondelete")),
                )
                for key in inspector.get_foreign_keys(table)
            ),
        }
    if connection.dialect.name == "sqlite":
        # Not reflected by the inspector, and part of the schema all the same (see 0002).
        triggers = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        schema["triggers"] = sorted(tuple(row) for row in triggers)
    return schema


def snapshot(database: ScratchDatabase) -> Schema:
    async def reflect() -> Schema:
        engine = create_async_engine(database.url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_reflect)
        finally:
            await engine.dispose()

    return run_async(reflect)


@pytest.fixture
def scratch(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    database = create_database(backend.backend)
    yield database
    drop_database(database)


def test_stairway(scratch: ScratchDatabase) -> None:
    config = alembic_config(scratch.url)
    revisions = [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]
    assert revisions, "no revisions"
    before = snapshot(scratch)
    for revision in revisions:
        in_thread(command.upgrade, config, revision)
        after = snapshot(scratch)  # a data migration (0005) leaves it as it was
        in_thread(command.downgrade, config, "-1")
        assert snapshot(scratch) == before, f"downgrading {revision} did not restore the schema before it"
        in_thread(command.upgrade, config, revision)
        assert snapshot(scratch) == after, f"upgrading {revision} again gave another schema"
        before = after
