"""The suite runs on one or more real databases: `--db sqlite|postgresql|mariadb|pgbouncer|all`.

Every test that takes the `backend` fixture (directly or through `app`/`client`) is run once per
selected backend. Each backend gets a fresh database, built by `alembic upgrade head`; every test
starts from empty tables. A backend whose server cannot be reached is skipped with the reason --
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import coredis
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, load_settings
from app.database import Database
from app.main import create_app
from app.migrations import upgrade_to_head
from app.models import Base, Post, User
from tests.databases import BACKENDS, ScratchDatabase, Unreachable, create_database, drop_database, in_thread

# Settings the developer's shell or .env might carry; the suite sets its own.
_SETTINGS_ENV = (
    "DATABASE_URL",
    "DB_PGBOUNCER",
    "MIGRATIONS_DATABASE_URL",
    "ENVIRONMENT",
    "SECRET_KEY",
    "MIGRATE_ON_STARTUP",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "ADMIN_NAME",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_LOGIN_ACCOUNT",
    "RATE_LIMIT_LOGIN_ADDRESS",
    "RATE_LIMIT_SIGNUP_ADDRESS",
    "RATE_LIMIT_STORAGE_URL",
    "RATE_LIMIT_KEY_PREFIX",
    "RATE_LIMIT_STORAGE_TIMEOUT",
    "TRUSTED_PROXIES",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "METRICS_ENABLED",
    "DB_SLOW_QUERY_MS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    # prometheus-client's own: set, every metric of the run would go to files there.
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
)
SECRET_KEY = "test-secret-key-with-plenty-of-entropy-0123456789"
PASSWORD = "correct horse battery"
# The suite logs in and registers thousands of times from one address: the throttles stay on, so
# every test passes through them, but at limits no test reaches (tests/auth/test_rate_limits.py
# sets its own).
GENEROUS_RATE_LIMIT = "1000000/hour"
# The Redis of the tests of shared state (rate limits, write positions); override to use another.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        action="append",
        default=[],
        choices=[*BACKENDS, "all"],
        help="backend to run the database tests on (repeatable; default: $TEST_DATABASES or sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name in _SETTINGS_ENV:
        os.environ.pop(name, None)


def _selected_backends(config: pytest.Config) -> list[str]:
    chosen: list[str] = config.getoption("--db") or os.environ.get("TEST_DATABASES", "sqlite").split(",")
    if "all" in chosen:
        return list(BACKENDS)
    return [backend for backend in BACKENDS if backend in chosen]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        backends = _selected_backends(metafunc.config)
        # @pytest.mark.backends(...) narrows a test to the backends where its fault can happen.
        marker = metafunc.definition.get_closest_marker("backends")
        if marker is not None:
            backends = [backend for backend in backends if backend in marker.args]
        # Migration tests run on the servers themselves: behind PgBouncer migrations go direct
        # (tests/test_pgbouncer.py checks that they do), so a pass through it would repeat them.
        if metafunc.definition.get_closest_marker("migrations") is not None:
            backends = [backend for backend in backends if backend != "pgbouncer"]
        metafunc.parametrize("backend", backends, indirect=True, scope="session")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> Iterator[ScratchDatabase]:
    """A migrated database on the backend this test instance runs on."""
    try:
        database = create_database(request.param)
    except Unreachable as exc:
        if in_ci():
            pytest.fail(f"CI=true requires every backend: {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        in_thread(upgrade_to_head, database.own_url)
        yield database
    finally:
        drop_database(database)


def make_settings(database: ScratchDatabase, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **database.settings,
        "secret_key": SECRET_KEY,
        "migrate_on_startup": False,
        "rate_limit_login_account": GENEROUS_RATE_LIMIT,
        "rate_limit_login_address": GENEROUS_RATE_LIMIT,
        "rate_limit_signup_address": GENEROUS_RATE_LIMIT,
        "_env_file": None,
    }
    return load_settings(**(values | overrides))


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app through its lifespan, as a client talks to it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture(scope="session")
async def app(backend: ScratchDatabase) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(backend))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def session_factory(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = app.state.db.session_factory
    return factory


@pytest.fixture
async def client(app: FastAPI, session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[httpx.AsyncClient]:
    # Fresh data for every test: emptied before (not after) so a failing test leaves its rows
    # for inspection. Real commits, real pool -- concurrency tests see what production sees.
    async with session_factory() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
        await session.commit()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as http:
        yield http


_emails = itertools.count(1)


def new_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_emails)}@example.com"


Register = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[[str, str], Awaitable[dict[str, str]]]


@pytest.fixture
def register(client: httpx.AsyncClient) -> Register:
    async def _register(
        *, email: str | None = None, name: str = "Test User", password: str = PASSWORD, **extra: Any
    ) -> dict[str, Any]:
        payload = {"email": email or new_email(), "name": name, "password": password, **extra}
        response = await client.post("/users", json=payload)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return _register


@pytest.fixture
def login(client: httpx.AsyncClient) -> Login:
    async def _login(email: str, password: str = PASSWORD) -> dict[str, str]:
        response = await client.post("/auth/token", data={"username": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return _login


class Account:
    """A registered user with a token, for tests that act as someone."""

    def __init__(self, profile: dict[str, Any], headers: dict[str, str]) -> None:
        self.profile = profile
        self.id: int = profile["id"]
        self.email: str = profile["email"]
        self.headers = headers


NewAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
def new_account(register: Register, login: Login, session_factory: async_sessionmaker[AsyncSession]) -> NewAccount:
    async def _new_account(*, admin: bool = False, **fields: Any) -> Account:
        profile = await register(**fields)
        if admin:
            async with session_factory() as session:
                await session.execute(update(User).where(User.id == profile["id"]).values(is_admin=True))
                await session.commit()
            profile["is_admin"] = True
        return Account(profile, await login(profile["email"], fields.get("password", PASSWORD)))

    return _new_account


@pytest.fixture
async def alice(new_account: NewAccount) -> Account:
    return await new_account(name="Alice Smith")


@pytest.fixture
async def bob(new_account: NewAccount) -> Account:
    return await new_account(name="Bob Jones")


@pytest.fixture
async def admin(new_account: NewAccount) -> Account:
    return await new_account(name="Ada Admin", admin=True)


async def count_users(session_factory: async_sessionmaker[AsyncSession], email: str | None = None) -> int:
    query = select(func.count()).select_from(User)
    if email is not None:
        query = query.where(User.email == email)
    async with session_factory() as session:
        return int((await session.execute(query)).scalar_one())


async def insert_posts(
    session_factory: async_sessionmaker[AsyncSession], author_id: int, count: int, *, title: str = "Post", **values: Any
) -> list[int]:
    """Posts written through the ORM, not the API: bulk data for listing tests, ids in creation order."""
    async with session_factory() as session:
        posts = [Post(author_id=author_id, title=f"{title} {i}", content="text", **values) for i in range(count)]
        session.add_all(posts)
        await session.commit()
        return [post.id for post in posts]


class StatementCounter:
    """Counts the SQL statements the app runs on both its engines, to prove a listing has no N+1."""

    def __init__(self, database: Database) -> None:
        self.engines = [database.engine.sync_engine, database.autocommit_engine.sync_engine]
        self.count = 0

    def _count(self, *args: Any) -> None:
        self.count += 1

    async def __aenter__(self) -> StatementCounter:
        self.count = 0
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._count)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for engine in self.engines:
            event.remove(engine, "before_cursor_execute", self._count)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in a Redis that answers; its keys are deleted after."""
    client = coredis.Redis.from_url(REDIS_URL, connect_timeout=1, stream_timeout=1)
    try:
        try:
            await client.ping()
        except (coredis.exceptions.RedisError, OSError) as exc:
            if in_ci():
                pytest.fail(f"CI=true requires Redis at {REDIS_URL}: {exc}", pytrace=False)
            pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
        prefix = f"blogapi-test-{uuid.uuid4().hex[:12]}"
        yield prefix
        keys: list[str | bytes] = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)
    finally:
        client.connection_pool.disconnect()
