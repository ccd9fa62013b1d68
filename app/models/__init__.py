"""Every ORM model, imported here so `Base.metadata` (and so Alembic) sees them all."""

from app.models.base import Base, TimestampMixin, UTCDateTime, utc_now, utcnow
from app.models.user import User

__all__ = ["Base", "TimestampMixin", "UTCDateTime", "User", "utc_now", "utcnow"]
