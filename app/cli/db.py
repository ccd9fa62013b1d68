"""`blogapi db ...` (and `blogapi migrate`): Alembic's commands, through its API.

They run the package's migrations (app/alembic, no alembic.ini needed) with the same lock and
timeouts as startup: env.py takes the migration lock and sets them for every command that
connects. Each command says what it did in one line.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import anyio
import typer
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.common import CommandFailed, fail, out, sqlite_file_missing
from app.config import Settings, get_settings
from app.engines import create_engine, create_migrations_engine, migrations_url
from app.errors import one_line
from app.migrations import (
    Migration,
    MigrationRefused,
    UnknownRevision,
    alembic_config,
    check_revision,
    database_revision,
    migrate,
)

db = typer.Typer(help="Migrate the database and write new migrations (Alembic).", no_args_is_help=True)


def register(cli: typer.Typer) -> None:
    cli.add_typer(db, name="db")
    cli.command("migrate", help="Upgrade the database to the latest revision (the same as `db upgrade`).")(upgrade)


def describe(migration: Migration) -> str:
    """`migrated 0007 -> 0008` (0000: a database never migrated, or taken down to base), or `already at 0008`."""
    if not migration.applied:
        return f"already at {migration.after or '0000'}"
    return f"migrated {migration.before or '0000'} -> {migration.after or '0000'}"


@db.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="The revision to go up to.")] = "head",
) -> None:
    """Upgrade the database to REVISION."""
    out.print(describe(asyncio.run(upgrade_to(get_settings(), revision))), markup=False)


@db.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="The revision to go down to (`base`: before the first).")],
) -> None:
    """Downgrade the database to REVISION: data in what is dropped is lost."""
    settings = get_settings()
    out.print(describe(asyncio.run(_downgrade_to(settings, revision))), markup=False)


@db.command("current")
def current() -> None:
    """Print the database's revision and whether it is this code's head."""
    settings = get_settings()
    head = _scripts().get_current_head()
    revision = None if sqlite_file_missing(settings.async_database_url) else asyncio.run(_revision(settings))
    if revision is None:
        out.print(f"0000: never migrated (head: {head})")
    elif revision == head:
        out.print(f"{revision} (head)")
    else:
        out.print(f"{revision} (head: {head}; `blogapi db upgrade` brings it there)")


@db.command("history")
def history() -> None:
    """List this code's revisions, newest first."""
    scripts = _scripts()
    head = scripts.get_current_head()
    for script in scripts.walk_revisions():
        marker = " (head)" if script.revision == head else ""
        out.print(f"{script.revision}  {script.doc}{marker}", markup=False)


@db.command("check")
def check() -> None:
    """Fail when the models hold changes that no migration makes (for CI)."""
    settings = get_settings()
    if sqlite_file_missing(settings.async_database_url):
        fail("the database is not migrated: run `blogapi db upgrade` first")
    try:
        command.check(_config(settings))
    except CommandError as exc:
        fail(f"check failed: {_message(exc)}")
    out.print(f"ok: the models match the migrations (head {_scripts().get_current_head()})")


@db.command("revision")
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the migration does (its file name).")],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Fill it in from the models' difference to the database.")
    ] = False,
) -> None:
    """Write a new migration with the next sequential id (0009_... after 0008)."""
    settings = get_settings()
    if autogenerate and sqlite_file_missing(settings.async_database_url):
        fail("autogenerate compares with the database, which is not migrated: run `blogapi db upgrade` first")
    try:
        config = _config(settings, connects=autogenerate)
        script = command.revision(config, message=message, autogenerate=autogenerate, rev_id=_next_id())
    except CommandError as exc:
        fail(f"revision failed: {_message(exc)}")
    path = Path(script.path) if script is not None and not isinstance(script, list) else None
    out.print(f"created {path}" if path else "created nothing", markup=False)


async def upgrade_to(settings: Settings, revision: str) -> Migration:
    with _migration_errors():
        engine = create_migrations_engine(settings)
        try:
            if revision in ("head", _scripts().get_current_head()):
                # Startup's own path: at head it neither locks nor loads Alembic's environment.
                return await migrate(engine)
            return await _step(engine, settings, command.upgrade, revision)
        finally:
            await engine.dispose()


async def _downgrade_to(settings: Settings, revision: str) -> Migration:
    with _migration_errors():
        engine = create_migrations_engine(settings)
        try:
            return await _step(engine, settings, command.downgrade, revision)
        finally:
            await engine.dispose()


async def _step(
    engine: AsyncEngine, settings: Settings, step: Callable[[Config, str], None], revision: str
) -> Migration:
    before = await check_revision(engine)
    config = _config(settings)
    # Blocking, with its own event loop (env.py): in a worker thread.
    await anyio.to_thread.run_sync(step, config, revision)
    return Migration(before=before, after=await database_revision(engine) or "")


@contextmanager
def _migration_errors() -> Iterator[None]:
    try:
        yield
    except CommandFailed:
        raise
    except (UnknownRevision, MigrationRefused, CommandError) as exc:
        # A newer release's database; PgBouncer's address only; a revision that is not ours.
        fail(f"migration refused: {_message(exc)}")
    except Exception as exc:  # noqa: BLE001 -- unreachable, lock timeout, no migrations: one line
        fail(f"migration failed: {one_line(exc)}")


def _message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _revision(settings: Settings) -> str | None:
    engine = create_engine(settings)
    try:
        return await database_revision(engine)
    finally:
        await engine.dispose()


def _config(settings: Settings, *, connects: bool = True) -> Config:
    """Alembic's config for a command; one that connects goes where migrations go."""
    try:
        url = migrations_url(settings) if connects else None
    except MigrationRefused as exc:
        fail(f"migration refused: {exc}")
    config = alembic_config(url)
    # Quiet: no progress lines of Alembic's own; each command prints its one-line outcome instead.
    config.cmd_opts = argparse.Namespace(quiet=True)
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _next_id() -> str:
    """One more than the highest numbered revision, so files sort in the order they apply."""
    numbers = [int(script.revision) for script in _scripts().walk_revisions() if script.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"
