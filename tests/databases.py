"""Throwaway databases on each backend, made and dropped by the test run itself."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from app.setting_values import to_async_url

if TYPE_CHECKING:
    from tests.pgbouncer import PgBouncer

# pgbouncer: the PostgreSQL server, with the app reaching it through PgBouncer in transaction
# mode (tests/pgbouncer.py) and migrations going to PostgreSQL directly, as README "Scaling out" says.
BACKENDS = ("sqlite", "postgresql", "mariadb", "pgbouncer")

# Where the servers are; override to point the suite elsewhere.
SERVER_URLS = {
    "postgresql": os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    "mariadb": os.environ.get("TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/"),
}

T = TypeVar("T")


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking code that starts its own event loop (Alembic's env.py) away from the test's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def run_async(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return in_thread(lambda: asyncio.run(coro_fn()))


@dataclass(frozen=True)
class ScratchDatabase:
    backend: str
    url: URL  # the app's address: PgBouncer's for the pgbouncer backend
    direct_url: URL | None = None  # PostgreSQL's own, when the app's goes through PgBouncer

    @property
    def server(self) -> str:
        """The database server behind the backend: sqlite, postgresql or mariadb."""
        return "postgresql" if self.backend == "pgbouncer" else self.backend

    @property
    def url_string(self) -> str:
        return self.url.render_as_string(hide_password=False)

    @property
    def own_url(self) -> URL:
        """The server's own address, PgBouncer bypassed: for migrations and a test's admin statements."""
        return self.direct_url or self.url

    @property
    def settings(self) -> dict[str, Any]:
        """Settings that point the app at this database (as keyword arguments)."""
        values: dict[str, Any] = {"database_url": self.url_string}
        if self.direct_url is not None:
            values["db_pgbouncer"] = True
            values["migrations_database_url"] = self.direct_url.render_as_string(hide_password=False)
        return values

    @property
    def environment(self) -> dict[str, str]:
        """The same, as environment variables for a process of its own."""
        return {
            name.upper(): str(value).lower() if isinstance(value, bool) else value
            for name, value in self.settings.items()
        }


class Unreachable(Exception):
    pass


async def _admin_execute(server_url: URL, *statements: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


def create_database(backend: str) -> ScratchDatabase:
    """A new, empty database; raises Unreachable when the server does not answer."""
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="blogapi-test-"))
        return ScratchDatabase(backend, to_async_url(f"sqlite:///{directory / 'test.db'}"))
    server_name = "postgresql" if backend == "pgbouncer" else backend
    server = to_async_url(SERVER_URLS[server_name])
    # Started first, so that a PgBouncer that cannot start leaves no database behind.
    bouncer = _pgbouncer(server) if backend == "pgbouncer" else None
    name = f"test_{uuid.uuid4().hex[:12]}"
    if server_name == "postgresql":
        create = f'CREATE DATABASE "{name}"'
        admin = server.set(database=server.database or "postgres")
    else:
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        admin = server.set(database=None)
    try:
        run_async(lambda: _admin_execute(admin, create))
    except Exception as exc:
        raise Unreachable(f"{backend} at {admin.render_as_string()} is not reachable: {exc}") from exc
    direct = server.set(database=name)
    if bouncer is not None:
        return ScratchDatabase(backend, bouncer.url(server, name), direct_url=direct)
    return ScratchDatabase(backend, direct)


def _pgbouncer(server: URL) -> PgBouncer:
    # Imported here: tests.pgbouncer's helpers import tests.conftest, which imports this module.
    from tests.pgbouncer import pgbouncer  # noqa: PLC0415

    try:
        return pgbouncer(server)
    except RuntimeError as exc:
        raise Unreachable(f"pgbouncer could not be started: {exc}") from exc


def drop_database(database: ScratchDatabase) -> None:
    if database.backend == "sqlite":
        directory = Path(database.url.database or "").parent
        for file in directory.glob("*"):
            file.unlink()
        directory.rmdir()
        return
    server = to_async_url(SERVER_URLS[database.server])
    name = database.url.database
    if database.server == "postgresql":
        admin = server.set(database=server.database or "postgres")
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        admin = server.set(database=None)
        statement = f"DROP DATABASE IF EXISTS `{name}`"
    run_async(lambda: _admin_execute(admin, statement))
