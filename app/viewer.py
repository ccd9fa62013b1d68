"""Who is calling, as read when the request began."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.database import AnyRow


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller's account: plain values, not an ORM object.

    Read on the read engine before the request's unit of work starts, so authenticating costs no
    session, and a write request's transaction begins only when it first touches the database
    (hashing a new password, say, happens before it holds a connection). Rules need the id and
    the flags; `/users/me` shows the rest.
    """

    id: int
    email: str
    name: str
    slug: str
    bio: str | None
    is_active: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: AnyRow) -> Viewer:
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            slug=row.slug,
            bio=row.bio,
            is_active=row.is_active,
            is_admin=row.is_admin,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
