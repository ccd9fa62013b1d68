"""Alembic driven from the app: upgrade at startup, and the revision checks behind readiness."""

from __future__ import annotations

from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

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
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(connection: AsyncConnection) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    try:
        result = await connection.execute(text("SELECT version_num FROM alembic_version"))
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise
        # No alembic_version table: a database nobody has migrated yet.
        await connection.rollback()
        return None
    return result.scalar_one_or_none()
