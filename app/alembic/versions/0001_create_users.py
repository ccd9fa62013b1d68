"""create users

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of what app.models.base renders today: a migration must keep producing the
# schema it produced when it was written, whatever the app code becomes.
UTC_DATETIME = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
_UTC_NOW_SQL = {
    "postgresql": "now()",
    "mysql": "utc_timestamp(6)",
    "mariadb": "utc_timestamp(6)",
    "sqlite": "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))",
}


def utc_now_default() -> sa.TextClause:
    return sa.text(_UTC_NOW_SQL[op.get_context().dialect.name])


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "email",
            sa.String(length=255).with_variant(mysql.VARCHAR(length=255, collation="utf8mb4_bin"), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=True)
    op.create_index(op.f("ix_users_email_is_active"), "users", ["email", "is_active"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_users_email_is_active"), table_name="users")
    op.drop_index(op.f("ix_users_email"), table_name="users")
    op.drop_table("users")
