from __future__ import annotations

from sqlalchemy import Boolean, Index, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, TimestampMixin

EMAIL_MAX_LENGTH = 255
NAME_MAX_LENGTH = 100


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (Index(None, "email", "is_active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Always stored lower-case, so the plain unique index makes addresses unique in any letter case.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH))
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"<User id={self.id}>"
