"""drop the (email, is_active) index of users: the unique index on email already finds the row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_users_email_is_active"
COLUMNS = ["email", "is_active"]


def upgrade() -> None:
    # Every lookup by email is an equality on a unique column: the unique index answers it, and
    # this one only cost every write to users a second B-tree to update.
    if op.get_context().dialect.name == "postgresql":
        # CONCURRENTLY: dropped without blocking reads and writes of users (outside a transaction).
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="users", postgresql_concurrently=True, if_exists=True)
        return
    op.drop_index(INDEX, table_name="users")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(INDEX, "users", COLUMNS, postgresql_concurrently=True, if_not_exists=True)
        return
    op.create_index(INDEX, "users", COLUMNS)
