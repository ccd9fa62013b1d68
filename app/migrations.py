"""Alembic driven from the app: upgrade at startup, and the revision checks behind readiness."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# env.py, script.py.mako and versions/ ship inside the package, so an installed wheel (which has
# no alembic.ini and no checkout around it) migrates exactly as a checkout does.
SCRIPT_LOCATION = Path(__file__).resolve().with_name("alembic")


def alembic_config(database_url: URL | str | None = None) -> Config:
    """Alembic's config for this code, built here: needs no alembic.ini and no working directory.

    With `database_url` the migrations run against it; otherwise env.py reads DATABASE_URL.
    """
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        url = database_url if isinstance(database_url, str) else database_url.render_as_string(hide_password=False)
        config.attributes["database_url"] = url
    # The app has configured logging already; env.py must not replace it.
    config.attributes["configure_logging"] = False
    return config


def upgrade_to_head(database_url: URL | str | None = None) -> None:
    """Blocking: run it in a worker thread from async code."""
    command.upgrade(alembic_config(database_url), "head")


@lru_cache
def _scripts(location: Path) -> ScriptDirectory:
    # Keyed by the folder, so a test that points SCRIPT_LOCATION elsewhere gets that folder's.
    config = alembic_config()
    config.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(config)


def head_revision() -> str | None:
    """This code's head revision; None when it carries no migrations (an incomplete install)."""
    try:
        return _scripts(SCRIPT_LOCATION).get_current_head()
    except CommandError:  # the scripts folder is missing
        return None


def is_known(revision: str) -> bool:
    try:
        return _scripts(SCRIPT_LOCATION).get_revision(revision) is not None
    except (ResolutionError, CommandError):  # ScriptDirectory reports an unknown id as CommandError
        return False


class UnknownRevision(RuntimeError):
    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database is at revision {revision}, which this code does not know: a newer release "
            "migrated it. Deploy that release, or downgrade the database with it first."
        )


class MigrationRefused(RuntimeError):
    """Migrating is not safe through the address given (PgBouncer's transaction mode)."""


class NoMigrations(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"this code carries no migrations (none in {SCRIPT_LOCATION}): the install is incomplete")


@dataclass(frozen=True, slots=True)
class Migration:
    """What `migrate` did: the database's revision before (None: never migrated) and after."""

    before: str | None
    after: str

    @property
    def applied(self) -> bool:
        return self.before != self.after


async def migrate(engine: AsyncEngine) -> Migration:
    """Bring the database to head, as startup does.

    The cheap check comes first: at head (every restart but the first after a deploy) nothing is
    locked or run. A database at a revision this code does not know was migrated by a newer
    release: refuse rather than run old code on a schema it was not written for. Code without
    migrations is refused too, rather than reported as done.
    """
    head = head_revision()
    if head is None:
        raise NoMigrations
    check_sqlite_directory(engine.url)
    before = await check_revision(engine)
    if before != head:
        # Blocking, with its own event loop (env.py): in a worker thread. env.py takes the lock.
        await anyio.to_thread.run_sync(upgrade_to_head, engine.url)
    return Migration(before=before, after=head)


def check_sqlite_directory(url: URL) -> None:
    # Fail with a plain message rather than through aiosqlite, whose worker thread outlives a
    # failed connect and then reports into the (by then closed) event loop of a CLI run.
    if url.get_backend_name() == "sqlite" and url.database:
        directory = Path(url.database).expanduser().resolve().parent
        if not directory.is_dir():
            raise FileNotFoundError(f"the SQLite database's directory {directory} does not exist")


async def check_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; UnknownRevision when a newer release migrated it."""
    current = await database_revision(engine)
    if current is not None and not is_known(current):
        # Without scripts every revision is unknown: say what is actually wrong.
        raise NoMigrations if head_revision() is None else UnknownRevision(current)
    return current


async def database_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, as Alembic reads it; None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
