"""The declarative base, its naming convention, and a timestamp type that is UTC on every dialect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, MetaData
from sqlalchemy.dialects import mysql
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

# Predictable constraint names on every dialect: migrations can drop them by name, and the
# repositories recognise a violated constraint by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _created_at(context: DefaultExecutionContext) -> datetime:
    # A new row's updated_at equals its created_at to the microsecond, rather than trailing it by
    # the time between two clock reads. created_at precedes it, so its default is already computed.
    created_at: datetime | None = context.get_current_parameters().get("created_at")  # type: ignore[no-untyped-call]
    return created_at or utc_now()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored and returned in UTC on every dialect.

    PostgreSQL keeps the offset (timestamptz). MariaDB and SQLite have no zone-aware type: they
    store naive UTC, and results are tagged with UTC on the way out. On MariaDB the column is
    DATETIME(6), because plain DATETIME drops the microseconds and breaks ordering by time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        if dialect.driver == "asyncpg":
            # asyncpg decodes timestamptz as UTC-aware datetimes whatever the session's time zone,
            # so process_result_value would change nothing; skipping it saves a Python call per
            # value, two per listed user or post. Other drivers (psycopg returns the session's
            # zone) keep the conversion.
            return self.impl_instance.result_processor(dialect, coltype)
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class utcnow(FunctionElement[datetime]):  # noqa: N801 -- reads as the SQL function it renders
    """The database's current UTC time, at the precision UTCDateTime stores."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utcnow, "postgresql")
def _utcnow_postgresql(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    return "now()"


@compiles(utcnow, "mysql")
@compiles(utcnow, "mariadb")
def _utcnow_mysql(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # UTC_TIMESTAMP, unlike NOW(), does not depend on the session's time_zone.
    return "utc_timestamp(6)"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: utcnow, compiler: SQLCompiler, **kw: Any) -> str:
    # CURRENT_TIMESTAMP would drop the fraction of a second. The padding makes the text exactly
    # what SQLAlchemy writes for a Python datetime (6 digits): SQLite compares these as strings,
    # and "...05.123" sorts before "...05.123000" -- a keyset cursor would repeat or skip rows.
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


class TimestampMixin:
    """created_at / updated_at.

    Python supplies both on ORM writes, so an INSERT or UPDATE needs no second round trip to
    read them back; the server defaults cover rows written by plain SQL.
    """

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, server_default=utcnow())
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=_created_at, onupdate=utc_now, server_default=utcnow()
    )
