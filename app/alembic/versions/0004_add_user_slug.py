"""add user slug (nullable: filled by 0005, made required by 0006)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Byte-ordered on every backend (see app.models.user).
SLUG = (
    sa.String(length=120)
    .with_variant(postgresql.VARCHAR(length=120, collation="C"), "postgresql")
    .with_variant(mysql.VARCHAR(length=120, collation="utf8mb4_bin"), "mysql", "mariadb")
)


def upgrade() -> None:
    # Nullable first: adding a NOT NULL column to a table with rows needs a value for each of
    # them, and working those out is 0005's job. A plain ADD COLUMN is instant on every backend
    # (no table rewrite, no batch rebuild on SQLite).
    op.add_column("users", sa.Column("slug", SLUG, nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN on every backend (SQLite has had it since 3.35): no batch rebuild of
    # `users`, so its triggers and its children's rows are left alone.
    op.drop_column("users", "slug")
