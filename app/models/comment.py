from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, TimestampMixin

if TYPE_CHECKING:
    from app.models.post import Post
    from app.models.user import User


class Comment(TimestampMixin, Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index(None, "post_id", "created_at", "id"),  # a post's comments, oldest first; also the FK's index
        Index(None, "author_id"),  # the FK's index: cascades from users, and MariaDB would add one anyway
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)

    post: Mapped[Post] = relationship(back_populates="comments", lazy="raise")
    author: Mapped[User] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"<Comment id={self.id}>"
