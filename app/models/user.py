from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Index, String, Text, false, true
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.post import Post

EMAIL_MAX_LENGTH = 255
NAME_MAX_LENGTH = 100
SLUG_MAX_LENGTH = 120
# Byte order on every backend: slugs are ASCII, and finding the next free `name-<n>` is an index
# range scan only when the collation does not skip the `-` (PostgreSQL's locales do).
_SLUG_TYPE = (
    String(SLUG_MAX_LENGTH)
    .with_variant(postgresql.VARCHAR(SLUG_MAX_LENGTH, collation="C"), "postgresql")
    .with_variant(mysql.VARCHAR(SLUG_MAX_LENGTH, collation="utf8mb4_bin"), "mysql", "mariadb")
)


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        # The default listing order (newest first, ties by id): an index range, not a sort of
        # every user on every page.
        Index(None, "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Always stored lower-case, so the plain unique index makes addresses unique in any letter
    # case. Binary on MariaDB, whose default collation would also equate "jose" and "josé".
    email: Mapped[str] = mapped_column(
        String(EMAIL_MAX_LENGTH).with_variant(
            mysql.VARCHAR(EMAIL_MAX_LENGTH, collation="utf8mb4_bin"), "mysql", "mariadb"
        ),
        unique=True,
        index=True,
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    # The handle in profile URLs, made from the name at registration and kept when it changes.
    slug: Mapped[str] = mapped_column(_SLUG_TYPE, unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # The database's ON DELETE CASCADE removes a user's posts (and their comments):
    # passive_deletes keeps the ORM from loading them first.
    posts: Mapped[list[Post]] = relationship(
        back_populates="author", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<User id={self.id}>"
