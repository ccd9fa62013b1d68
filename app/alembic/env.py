"""Alembic environment: async, URL from DATABASE_URL, metadata from app.models."""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import get_settings
from app.engines import connect_options, migrations_url
from app.migration_lock import migration_lock
from app.migrations import check_sqlite_directory
from app.models import Base, UTCDateTime
from app.setting_values import to_async_url

config = context.config
logger = logging.getLogger("app.migrations")

if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        target = to_async_url(url)
    else:
        # Offline, only the dialect matters: no connection, no lock, nothing to refuse.
        settings = get_settings()
        target = settings.async_migrations_url if context.is_offline_mode() else migrations_url(settings)
    return target.render_as_string(hide_password=False)


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import app code (it changes; they must not), so autogenerate writes
    # the timestamp type as the plain types it stands for on each dialect.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")'
    return False


def _configure(**kwargs: Any) -> None:
    url = _database_url()
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=url.startswith("sqlite"),
        render_item=_render_item,
        # Each revision commits on its own: otherwise 0004's ADD COLUMN (an exclusive lock on
        # `users`) would stay held while 0005 reads the whole table and computes slugs.
        transaction_per_migration=True,
        **kwargs,
    )


def _timeouts(dialect: str) -> list[str]:
    """PostgreSQL session settings for migrating a live database.

    A DDL statement waiting for its lock blocks every query queued behind it: better to fail
    after a few seconds (and retry the deploy) than to stall the service. These are session
    settings, so they also hold across autocommit blocks (CREATE INDEX CONCURRENTLY).
    """
    if dialect != "postgresql":
        return []
    settings = get_settings()
    return [
        f"SET lock_timeout = '{round(settings.migration_ddl_lock_timeout * 1000)}ms'",
        f"SET statement_timeout = '{round(settings.migration_statement_timeout * 1000)}ms'",
    ]


def run_migrations_offline() -> None:
    """`alembic ... --sql`: emit the SQL instead of running it."""
    url = _database_url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    if make_url(url).get_backend_name() == "sqlite":
        # As online (see _sqlite_foreign_keys_off): a batch rebuild must not cascade. Before any
        # BEGIN, where SQLite ignores the pragma.
        context.execute("PRAGMA foreign_keys=OFF")
    with context.begin_transaction():
        for statement in _timeouts(make_url(url).get_backend_name()):
            context.execute(statement)
        context.run_migrations()


def _already_at_head(connection: Connection) -> bool:
    """`upgrade head` on a database at head: nothing to do, so no lock to wait for."""
    try:
        destination = context.get_revision_argument()
    except KeyError:  # a command with no destination: current, check, history
        return False
    head = ScriptDirectory.from_config(config).get_current_head()
    # Alembic hands env.py "head" already resolved to the revision id.
    if destination not in ("head", "heads", head):
        return False
    current = MigrationContext.configure(connection).get_current_revision()
    connection.commit()
    return current is not None and current == head


def _run_sync(connection: Connection) -> None:
    if _already_at_head(connection):
        return
    timeout = config.attributes.get("migration_lock_timeout") or get_settings().migration_lock_timeout
    with migration_lock(connection, timeout=timeout):
        if connection.dialect.name == "sqlite":
            _sqlite_foreign_keys_off(connection)
        for statement in _timeouts(connection.dialect.name):
            connection.exec_driver_sql(statement)
        connection.commit()
        _configure(connection=connection, on_version_apply=_log_applied)
        with context.begin_transaction():
            context.run_migrations()
        if connection.dialect.name == "sqlite":
            _sqlite_check_foreign_keys(connection)


def _sqlite_foreign_keys_off(connection: Connection) -> None:
    # Batch mode rebuilds a table by copy-and-drop: with enforcement on, dropping `users` would
    # cascade into every post and comment. Off is SQLite's default, but a build can change that.
    # (The pragma is ignored inside a transaction, so this runs before the migrations begin one.)
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()


# SQLite's cascades for clients that leave foreign keys off (created by 0002 and 0003):
# (name, table it fires on, table it deletes from, SQL).
_SQLITE_CASCADE_TRIGGERS = [
    ("trg_users_delete_posts", "users", "posts", "DELETE FROM posts WHERE author_id = OLD.id"),
    ("trg_users_delete_comments", "users", "comments", "DELETE FROM comments WHERE author_id = OLD.id"),
    ("trg_posts_delete_comments", "posts", "comments", "DELETE FROM comments WHERE post_id = OLD.id"),
]


def _sqlite_check_foreign_keys(connection: Connection) -> None:
    # What enforcement would have caught while it was off.
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if problems:
        raise RuntimeError(f"migration left rows that break foreign keys: {problems[:10]}")
    # A batch rebuild of a table (any autogenerated drop or alter of a column) drops its
    # triggers with it, silently. Put back any cascade trigger whose tables both exist.
    rows = connection.exec_driver_sql("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'trigger')")
    present = {(kind, name) for kind, name in rows}
    for name, table, target, action in _SQLITE_CASCADE_TRIGGERS:
        if ("table", table) in present and ("table", target) in present and ("trigger", name) not in present:
            logger.warning("restoring trigger %s, dropped by a rebuild of %s", name, table)
            connection.exec_driver_sql(f"CREATE TRIGGER {name} AFTER DELETE ON {table} BEGIN {action}; END")
    connection.commit()


def _log_applied(*, step: Any, **_: Any) -> None:
    verb = "applied" if step.is_upgrade else "reverted"
    logger.info("%s revision %s", verb, step.up_revision_id if step.is_upgrade else step.down_revision_ids)


async def run_migrations_online() -> None:
    url = make_url(_database_url())
    check_sqlite_directory(url)
    settings = get_settings()
    options = connect_options(url, connect_timeout=settings.db_pool_timeout, command_timeout=None)
    # Unlike the app's connections, these leave SQLite's foreign keys off: batch mode rebuilds a
    # table by copy-and-drop, and with enforcement on the drop would cascade into its children.
    engine = create_async_engine(url, poolclass=pool.NullPool, **options)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
