"""The queries authentication needs: accounts with their password hashes, by id and by email."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, select, update

from app.database import Connection
from app.models import User
from app.rows import AnyRow

_users: Table = User.__table__  # type: ignore[assignment]
# Built once; the values are bound per call, so SQLAlchemy's compiled-statement cache always hits.
_BY_ID = select(_users).where(_users.c.id == bindparam("user_id"))
_BY_EMAIL = select(_users).where(_users.c.email == bindparam("email"))
_REPLACE_HASH = (
    update(_users)
    .where(_users.c.id == bindparam("user_id"), _users.c.password_hash == bindparam("old"))
    .values(password_hash=bindparam("new"))
)


async def read_account(connection: Connection, user_id: int) -> AnyRow | None:
    """The whole row, password hash included: what a token is checked against."""
    return (await connection.execute(_BY_ID, {"user_id": user_id})).one_or_none()


async def account_by_email(connection: Connection, email: str) -> AnyRow | None:
    return (await connection.execute(_BY_EMAIL, {"email": email})).one_or_none()


async def replace_password_hash(connection: Connection, user_id: int, *, old: str, new: str) -> bool:
    """Compare-and-set, one statement: False when the hash is no longer `old` (changed, or the
    user is gone)."""
    result = await connection.execute(_REPLACE_HASH, {"user_id": user_id, "old": old, "new": new})
    return bool(result.rowcount)
