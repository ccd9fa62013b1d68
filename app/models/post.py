from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.comment import Comment
    from app.models.user import User

TITLE_MAX_LENGTH = 200


class Post(TimestampMixin, Base):
    __tablename__ = "posts"
    __table_args__ = (
        # Each one serves a listing's ORDER BY ... , id and its keyset condition, so a deep page
        # by cursor is an index range scan like the first page.
        Index(None, "created_at", "id"),
        Index(None, "author_id", "created_at", "id"),  # a user's posts; also the FK's index
        Index(None, "views", "id"),
        Index(None, "title", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    # MariaDB's TEXT holds 64 KiB; 100,000 characters of utf8mb4 need MEDIUMTEXT.
    content: Mapped[str] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"))
    views: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    author: Mapped[User] = relationship(back_populates="posts", lazy="raise")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="post", lazy="raise", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Post id={self.id}>"
