"""create posts

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies, as in 0001: a migration does not import app code.
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
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=False),
        sa.Column("views", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(op.f("ix_posts_created_at_id"), "posts", ["created_at", "id"])
    op.create_index(op.f("ix_posts_author_id_created_at_id"), "posts", ["author_id", "created_at", "id"])
    op.create_index(op.f("ix_posts_views_id"), "posts", ["views", "id"])
    op.create_index(op.f("ix_posts_title_id"), "posts", ["title", "id"])
    if op.get_context().dialect.name == "sqlite":
        # SQLite enforces foreign keys (and so ON DELETE CASCADE) only on connections that turned
        # them on, as the app's do. The trigger makes a delete from any other client -- the sqlite3
        # shell, a backup script -- cascade as well. A batch rebuild of `users` drops it: a
        # migration that rebuilds `users` must create it again.
        op.execute(
            "CREATE TRIGGER trg_users_delete_posts AFTER DELETE ON users "
            "BEGIN DELETE FROM posts WHERE author_id = OLD.id; END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER trg_users_delete_posts")
    # The indexes go with the table; dropping the foreign key's index first would fail on
    # MariaDB (error 1553).
    op.drop_table("posts")
