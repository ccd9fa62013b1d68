"""Who is calling, as read when the request began, and the one rule about what they may manage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated caller's account: plain values, not an ORM object.

    Read on the request's autocommit connection, which is given back before the endpoint runs,
    so authenticating holds no connection while a write request hashes a new password, say.
    Rules need the id and the flags; `/users/me` shows the rest.
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
    def from_row(cls, row: Any) -> Viewer:
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


def may_manage(viewer: Viewer | None, owner_id: int) -> bool:
    """Owners and admins may change and delete a thing (an account, a post, a comment), and see an
    account's email."""
    return viewer is not None and (viewer.is_admin or viewer.id == owner_id)
