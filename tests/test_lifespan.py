"""Startup: migrations, readiness, the admin account from settings, clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app import migrations
from app.main import StartupError, create_app
from app.migrations import head_revision
from app.models import User
from tests.conftest import make_settings, serving
from tests.databases import ScratchDatabase, create_database, drop_database

ADMIN = {"admin_email": "Root@Example.com", "admin_password": "admin password 1", "admin_name": "Root"}


@pytest.fixture
def empty_database(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    """A database on the same backend that nobody has migrated."""
    database = create_database(backend.backend)
    yield database
    drop_database(database)


@pytest.fixture(params=["missing", "empty"])
def without_migrations(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """This code as an install that lost its migrations: no scripts folder, or one with no revisions."""
    location = tmp_path / "alembic"
    if request.param == "empty":
        (location / "versions").mkdir(parents=True)
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", location)


def assert_not_ready(response: httpx.Response, *, revision: str | None, expected: str | None) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["detail"]
    assert body["revision"] == revision
    assert body["expected_revision"] == expected


async def test_unmigrated_database_is_not_ready(empty_database: ScratchDatabase) -> None:
    app = create_app(make_settings(empty_database))
    async with serving(app) as client:
        response = await client.get("/health/ready")
    assert_not_ready(response, revision=None, expected=head_revision())
    assert "not migrated" in response.json()["detail"]


@pytest.mark.usefixtures("without_migrations")
async def test_code_without_migrations_is_not_ready_on_an_unmigrated_database(empty_database: ScratchDatabase) -> None:
    # Both revisions unknown: None == None must not pass for "at head".
    app = create_app(make_settings(empty_database))
    async with serving(app) as client:
        response = await client.get("/health/ready")
    assert_not_ready(response, revision=None, expected=None)
    assert "no migrations" in response.json()["detail"]


async def test_code_without_migrations_is_not_ready_on_a_migrated_database(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = head_revision()
    assert (await client.get("/health/ready")).status_code == 200
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", tmp_path / "missing")
    assert_not_ready(await client.get("/health/ready"), revision=head, expected=None)


@pytest.mark.usefixtures("without_migrations")
@pytest.mark.parametrize("migrate_on_startup", [True, False])
async def test_code_without_migrations_refuses_to_start(backend: ScratchDatabase, *, migrate_on_startup: bool) -> None:
    # `backend` is migrated: migrating would do nothing, checking finds a revision no script has.
    app = create_app(make_settings(backend, migrate_on_startup=migrate_on_startup))
    with pytest.raises(StartupError, match="carries no migrations"):
        async with app.router.lifespan_context(app):
            pass


@pytest.mark.usefixtures("without_migrations")
async def test_code_without_migrations_does_not_pretend_to_migrate(empty_database: ScratchDatabase) -> None:
    app = create_app(make_settings(empty_database, migrate_on_startup=True))
    with pytest.raises(StartupError, match="carries no migrations"):
        async with app.router.lifespan_context(app):
            pass


async def test_startup_migrates_then_creates_the_admin_idempotently(empty_database: ScratchDatabase) -> None:
    settings = make_settings(empty_database, migrate_on_startup=True, **ADMIN)
    for _ in range(2):
        app = create_app(settings)
        async with serving(app) as client:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["revision"] == head_revision()
            token = await client.post(
                "/auth/token", data={"username": "root@example.com", "password": "admin password 1"}
            )
            assert token.status_code == 200
            me = await client.get("/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert me.json()["is_admin"] is True
            assert me.json()["name"] == "Root"
            async with app.state.db.session_factory() as session:
                assert len((await session.scalars(select(User))).all()) == 1


async def test_startup_promotes_an_existing_account_under_the_admin_password(empty_database: ScratchDatabase) -> None:
    app = create_app(make_settings(empty_database, migrate_on_startup=True))
    async with serving(app) as client:
        # Someone registered the admin's address first, with a password of their own.
        squatter = {"username": "root@example.com", "password": "squatter password"}
        payload = {"email": squatter["username"], "name": "Existing", "password": squatter["password"]}
        assert (await client.post("/users", json=payload)).status_code == 201
        token = (await client.post("/auth/token", data=squatter)).json()["access_token"]
        squatter_headers = {"Authorization": f"Bearer {token}"}
    app = create_app(make_settings(empty_database, migrate_on_startup=True, **ADMIN))
    async with serving(app) as client:
        assert (await client.get("/users/me", headers=squatter_headers)).status_code == 401
        assert (await client.post("/auth/token", data=squatter)).status_code == 401
        credentials = {"username": "root@example.com", "password": "admin password 1"}
        token = (await client.post("/auth/token", data=credentials)).json()["access_token"]
        me = await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["is_admin"] is True
        assert me.json()["name"] == "Existing"


async def test_startup_against_an_unreachable_database_fails_in_one_line(backend: ScratchDatabase) -> None:
    url = "sqlite:////nonexistent-directory/x.db" if backend.server == "sqlite" else None
    url = url or backend.url.set(port=1).render_as_string(hide_password=False)
    unreachable = {"database_url": url, "migrations_database_url": url}  # behind PgBouncer, both addresses
    app = create_app(make_settings(backend, **unreachable, migrate_on_startup=True, db_pool_timeout=1.0))
    with pytest.raises(StartupError) as error:
        async with app.router.lifespan_context(app):
            pass
    assert str(error.value).startswith("startup failed against ")
    assert "\n" not in str(error.value)
