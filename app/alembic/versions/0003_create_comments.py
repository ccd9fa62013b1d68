"""create comments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
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
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, server_default=utc_now_default(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_comments_author_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name=op.f("fk_comments_post_id_posts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
    )
    op.create_index(op.f("ix_comments_post_id_created_at_id"), "comments", ["post_id", "created_at", "id"])
    op.create_index(op.f("ix_comments_author_id"), "comments", ["author_id"])
    if op.get_context().dialect.name == "sqlite":
        # Cascades for clients that leave foreign keys off (see 0002).
        op.execute(
            "CREATE TRIGGER trg_posts_delete_comments AFTER DELETE ON posts "
            "BEGIN DELETE FROM comments WHERE post_id = OLD.id; END"
        )
        op.execute(
            "CREATE TRIGGER trg_users_delete_comments AFTER DELETE ON users "
            "BEGIN DELETE FROM comments WHERE author_id = OLD.id; END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER trg_users_delete_comments")
        op.execute("DROP TRIGGER trg_posts_delete_comments")
    # The indexes go with the table (see 0002).
    op.drop_table("comments")
