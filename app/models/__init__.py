"""Every ORM model, imported here so `Base.metadata` (and so Alembic) sees them all."""

from app.models.base import Base, TimestampMixin, UTCDateTime, utc_now, utcnow
from app.models.comment import Comment
from app.models.post import Post
from app.models.user import User

__all__ = ["Base", "Comment", "Post", "TimestampMixin", "UTCDateTime", "User", "utc_now", "utcnow"]
