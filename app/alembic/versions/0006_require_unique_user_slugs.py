"""require user slugs: NOT NULL and unique

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLUG = (
    sa.String(length=120)
    .with_variant(postgresql.VARCHAR(length=120, collation="C"), "postgresql")
    .with_variant(mysql.VARCHAR(length=120, collation="utf8mb4_bin"), "mysql", "mariadb")
)
SQLITE_NOW = "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"
# Frozen copies of 0002's and 0003's triggers: rebuilding `users` on SQLite drops them with it.
SQLITE_USER_TRIGGERS = (
    "CREATE TRIGGER trg_users_delete_posts AFTER DELETE ON users BEGIN DELETE FROM posts WHERE author_id = OLD.id; END",
    "CREATE TRIGGER trg_users_delete_comments AFTER DELETE ON users "
    "BEGIN DELETE FROM comments WHERE author_id = OLD.id; END",
)


def _set_nullable(*, nullable: bool) -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        if nullable:
            op.alter_column("users", "slug", existing_type=SLUG, nullable=True)
            return
        # SET NOT NULL alone scans the whole table under an ACCESS EXCLUSIVE lock, blocking every
        # reader and writer meanwhile. A NOT VALID check is instant, VALIDATE scans without
        # blocking writes, and SET NOT NULL then trusts the validated check instead of scanning.
        with op.get_context().autocommit_block():
            # IF EXISTS: a run that stopped after adding the check can simply be run again.
            op.execute("ALTER TABLE users DROP CONSTRAINT IF EXISTS ck_users_slug_not_null")
            op.execute("ALTER TABLE users ADD CONSTRAINT ck_users_slug_not_null CHECK (slug IS NOT NULL) NOT VALID")
            op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_users_slug_not_null")
            op.alter_column("users", "slug", existing_type=SLUG, nullable=False)
            op.execute("ALTER TABLE users DROP CONSTRAINT ck_users_slug_not_null")
        return
    if dialect == "sqlite":
        # SQLite cannot alter a column: batch mode rebuilds `users` (copy, drop, rename). env.py
        # keeps foreign keys off for this -- with them on, dropping the old table would cascade
        # into every post and comment -- and checks them afterwards. The drop takes the table's
        # triggers with it: create them again. Offline (--sql) there is no table to reflect, so
        # the rebuild works from the frozen definition below.
        copy_from = _users_before(nullable=not nullable) if context.is_offline_mode() else None
        with op.batch_alter_table("users", recreate="always", copy_from=copy_from) as batch:
            batch.alter_column("slug", existing_type=SLUG, nullable=nullable)
        for name in ("trg_users_delete_posts", "trg_users_delete_comments"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for trigger in SQLITE_USER_TRIGGERS:
            op.execute(trigger)
        return
    op.alter_column("users", "slug", existing_type=SLUG, nullable=nullable)


def _users_before(*, nullable: bool) -> sa.Table:
    """`users` as 0005 leaves it (slug nullable) or as 0006 leaves it, without the slug index."""
    return sa.Table(
        "users",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text(SQLITE_NOW), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text(SQLITE_NOW), nullable=False),
        sa.Column("slug", SLUG, nullable=nullable),
        sa.Index("ix_users_email", "email", unique=True),
        sa.Index("ix_users_email_is_active", "email", "is_active"),
    )


def _check_slugs() -> None:
    """Fail before any DDL if rows written since 0005 (by an older release) lack a slug or share one.

    Without this the index or the NOT NULL would fail half-way; with it nothing is changed and
    the way out is plain: let the writers run the new release, then
    `alembic downgrade 0004 && alembic upgrade head` to backfill again.
    """
    if context.is_offline_mode():
        return
    bind = op.get_bind()
    missing = bind.scalar(sa.text("SELECT count(*) FROM users WHERE slug IS NULL"))
    shared = bind.scalar(sa.text("SELECT count(*) FROM (SELECT slug FROM users GROUP BY slug HAVING count(*) > 1) d"))
    if missing or shared:
        raise RuntimeError(
            f"{missing} users have no slug and {shared} slugs are shared: rows written since 0005 by an "
            "older release. Run `alembic downgrade 0004 && alembic upgrade head` once every writer runs this one."
        )


def upgrade() -> None:
    _check_slugs()
    if op.get_context().dialect.name == "postgresql":
        # CONCURRENTLY: built without blocking writes (it cannot run inside a transaction). A run
        # that died while building leaves an INVALID index behind: drop it and build again.
        with op.get_context().autocommit_block():
            op.execute(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = 'ix_users_slug' AND NOT i.indisvalid) THEN "
                "EXECUTE 'DROP INDEX ix_users_slug'; END IF; END $$"
            )
            op.create_index(
                op.f("ix_users_slug"), "users", ["slug"], unique=True, postgresql_concurrently=True, if_not_exists=True
            )
        _set_nullable(nullable=False)
        return
    _set_nullable(nullable=False)
    op.create_index(op.f("ix_users_slug"), "users", ["slug"], unique=True)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(op.f("ix_users_slug"), table_name="users", postgresql_concurrently=True)
    else:
        op.drop_index(op.f("ix_users_slug"), table_name="users")
    _set_nullable(nullable=True)
