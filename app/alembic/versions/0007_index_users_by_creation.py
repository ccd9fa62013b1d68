"""index users by creation time, the default listing order

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_users_created_at_id"


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        # CONCURRENTLY: built without blocking writes to users (it cannot run in a transaction).
        # IF NOT EXISTS: a run interrupted after the build is finished by running upgrade again.
        with op.get_context().autocommit_block():
            op.create_index(INDEX, "users", ["created_at", "id"], postgresql_concurrently=True, if_not_exists=True)
        return
    op.create_index(INDEX, "users", ["created_at", "id"])


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name="users", postgresql_concurrently=True, if_exists=True)
        return
    op.drop_index(INDEX, table_name="users")
