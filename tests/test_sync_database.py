"""The sync engine (app/sync_database.py) against the same databases the API serves, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from app import sync_database
from app.config import load_settings
from app.models import Comment, Post, User
from app.sync_database import create_sync_engine, session_factory, to_sync_url
from app.users import accounts
from app.users.errors import EmailTaken
from tests.conftest import PASSWORD, NewAccount, Register, make_settings, new_email
from tests.databases import ScratchDatabase

DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg", "mariadb": "pymysql"}


@pytest.fixture(scope="session")
def sync_engine(backend: ScratchDatabase) -> Iterator[Engine]:
    engine = create_sync_engine(make_settings(backend))
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(sync_engine: Engine) -> sessionmaker[Session]:
    return session_factory(sync_engine)


def test_the_engine_takes_the_pool_settings_and_the_sync_driver(backend: ScratchDatabase) -> None:
    settings = make_settings(
        backend,
        db_pool_size=3,
        db_max_overflow=4,
        db_pool_timeout=7.5,
        db_pool_recycle=600,
        db_pool_pre_ping=True,
        db_echo=True,
    )
    engine = create_sync_engine(settings)
    try:
        pool = engine.pool
        assert isinstance(pool, QueuePool)
        assert (pool.size(), pool._max_overflow, pool._timeout) == (3, 4, 7.5)
        assert engine.echo is True
        assert engine.hide_parameters is False  # shown only when SQL logging was asked for
        # As on the async engines: a file is never recycled nor pinged.
        expected = (-1, False) if backend.server == "sqlite" else (600, True)
        assert (pool._recycle, pool._pre_ping) == expected
        assert engine.driver == DRIVERS[backend.server]
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT 1")) == 1
            if backend.server == "sqlite":
                assert connection.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        engine.dispose()


def test_session_local_is_built_on_first_use_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'lazy.db'}", _env_file=None)
    monkeypatch.setattr(sync_database, "get_settings", lambda: settings)
    namespace = vars(sync_database)
    for name in ("engine", "SessionLocal"):
        monkeypatch.delitem(namespace, name, raising=False)
    factory = sync_database.SessionLocal
    try:
        assert isinstance(factory, sessionmaker)
        assert sync_database.SessionLocal is factory
        assert sync_database.engine.url == to_sync_url(settings)
        assert not (tmp_path / "lazy.db").exists()  # built, not connected
    finally:
        sync_database.engine.dispose()
        del namespace["engine"], namespace["SessionLocal"]


async def test_timestamps_are_the_same_utc_values_both_ways(
    client: httpx.AsyncClient, register: Register, sessions: sessionmaker[Session], backend: ScratchDatabase
) -> None:
    profile = await register(name="Through The Api")
    with sessions() as session:
        if backend.server == "postgresql":
            # psycopg returns a timestamptz in the session's zone: the type converts it to UTC.
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        user = session.get_one(User, profile["id"])
    assert user.created_at.utcoffset() == timedelta(0)
    assert user.created_at == datetime.fromisoformat(profile["created_at"])

    moment = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)
    with sessions.begin() as session:
        written = accounts.create_account(
            session, email=new_email(), name="Through Sync", password=PASSWORD, admin=False
        )
        written.created_at = moment
        session.flush()
        raw = session.scalar(text("SELECT created_at FROM users WHERE id = :id"), {"id": written.id})
    if backend.server == "postgresql":
        assert raw.utcoffset() == timedelta(0)  # the sync connections' sessions are in UTC
    elif backend.server == "mariadb":
        assert raw == moment.replace(tzinfo=None)  # naive UTC, as the async engine stores it
    response = await client.get(f"/users/{written.id}")
    assert response.status_code == 200, response.text
    assert response.json()["created_at"] == "2026-03-29T01:30:15.123456Z"
    assert abs(datetime.fromisoformat(response.json()["updated_at"]) - datetime.now(UTC)) < timedelta(minutes=1)


async def test_deleting_a_user_deletes_their_posts_and_comments(
    client: httpx.AsyncClient, new_account: NewAccount, sessions: sessionmaker[Session]
) -> None:
    alice, bob = await new_account(name="Alice"), await new_account(name="Bob")
    posts = []
    for account in (alice, bob):
        created = await client.post("/posts", json={"title": "T", "content": "C"}, headers=account.headers)
        assert created.status_code == 201, created.text
        posts.append(created.json()["id"])
    for post_id in posts:
        for account in (alice, bob):
            comment = await client.post(f"/posts/{post_id}/comments", json={"body": "hi"}, headers=account.headers)
            assert comment.status_code == 201, comment.text

    with sessions.begin() as session:
        session.delete(session.get_one(User, alice.id))

    assert (await client.get(f"/posts/{posts[0]}")).status_code == 404
    left = (await client.get(f"/posts/{posts[1]}/comments")).json()["items"]
    assert [comment["author_id"] for comment in left] == [bob.id]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Post).where(Post.author_id == alice.id)) == 0
        assert session.scalar(select(func.count()).select_from(Comment).where(Comment.author_id == alice.id)) == 0


async def test_accounts_follow_the_apis_rules(
    client: httpx.AsyncClient, register: Register, sessions: sessionmaker[Session]
) -> None:
    taken = await register(email=new_email("taken"), name="José Núñez")
    # Another letter case is the same address, as in the API.
    with pytest.raises(EmailTaken), sessions.begin() as session:
        accounts.create_account(session, email=taken["email"].upper(), name="Other", password=PASSWORD, admin=False)
    with sessions.begin() as session:
        second = accounts.create_account(session, email=new_email(), name="Jose Nunez", password=PASSWORD, admin=False)
        nameless = accounts.create_account(session, email=new_email(), name="!!!", password=PASSWORD, admin=False)
    assert second.slug == "jose-nunez-2"  # numbered after the API's registration
    assert nameless.slug == f"user-{nameless.id}"
    assert nameless.updated_at == nameless.created_at

    # And the other way round: the API answers the sync session's account with its 409.
    payload = {"email": second.email.upper(), "name": "Again", "password": PASSWORD}
    duplicate = await client.post("/users", json=payload)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "email_taken")
