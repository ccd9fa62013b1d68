from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import User


async def test_server_defaults_are_utc_and_come_back_aware(
    client: object, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # Written by plain SQL, so the database's own defaults fill the timestamps.
    async with session_factory() as session:
        await session.execute(
            text("INSERT INTO users (email, name, slug, password_hash) VALUES ('raw@example.com', 'Raw', 'raw', 'x')")
        )
        await session.commit()
        user = (await session.scalars(select(User).where(User.email == "raw@example.com"))).one()
    now = datetime.now(UTC)
    for value in (user.created_at, user.updated_at):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert abs(value - now) < timedelta(minutes=1)
    assert user.is_active is True
    assert user.is_admin is False


async def test_aware_datetimes_round_trip_in_utc_with_microseconds(
    client: object, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    moment = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    async with session_factory() as session:
        session.add(User(email="tz@example.com", name="Tz", slug="tz", password_hash="x", created_at=moment))
        await session.commit()
    async with session_factory() as session:
        # Read back in a session in Tokyo: on PostgreSQL the app relies on asyncpg returning
        # timestamptz in UTC whatever the session's zone (UTCDateTime skips its own conversion there).
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
            assert await session.scalar(text("SELECT current_setting('TimeZone')")) == "Asia/Tokyo"
        stored = (await session.scalars(select(User).where(User.email == "tz@example.com"))).one()
    assert stored.created_at == moment
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == timedelta(0)
