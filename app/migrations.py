"""Alembic driven from the app: upgrade at startup, and the revision checks behind readiness."""

from __future__ import annotations

from functools import lru_cache

import anyio
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import PROJECT_ROOT


def alembic_config(database_url: URL | str | None = None) -> Config:
    """Alembic's config for this project, usable from any working directory.

    With `database_url` the migrations run against it; otherwise env.py reads DATABASE_URL.
    """
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    if database_url is not None:
        url = database_url if isinstance(database_url, str) else database_url.render_as_string(hide_password=False)
        config.attributes["database_url"] = url
    # The app has configured logging already; env.py must not replace it with alembic.ini's.
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(database_url: URL | str | None = None) -> None:
    """Blocking: run it in a worker thread from async code."""
    command.upgrade(alembic_config(database_url), "head")


@lru_cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str | None:
    return _scripts().get_current_head()


def is_known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except (ResolutionError, CommandError):  # ScriptDirectory reports an unknown id as CommandError
        return False


class UnknownRevision(RuntimeError):
    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database is at revision {revision}, which this code does not know: a newer release "
            "migrated it. Deploy that release, or downgrade the database with it first."
        )


async def migrate(engine: AsyncEngine) -> bool:
    """Bring the database to head, as startup does; True when something was applied.

    The cheap check comes first: at head (every restart but the first after a deploy) nothing is
    locked or run. A database at a revision this code does not know was migrated by a newer
    release: refuse rather than run old code on a schema it was not written for.
    """
    if await check_revision(engine) == head_revision():
        return False
    # Blocking, with its own event loop (env.py): in a worker thread. env.py takes the lock.
    await anyio.to_thread.run_sync(upgrade_to_head, engine.url)
    return True


async def check_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; UnknownRevision when a newer release migrated it."""
    current = await database_revision(engine)
    if current is not None and not is_known(current):
        raise UnknownRevision(current)
    return current


async def database_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, as Alembic reads it; None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
