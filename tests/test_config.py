from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.config import PROJECT_ROOT, ConfigError, Settings, load_settings
from app.engines import engine_options
from app.setting_values import to_async_url


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+psycopg2://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+asyncpg://u@db/app?ssl=require"),
        ("mysql://root@db/app", "mysql+asyncmy://root@db/app?charset=utf8mb4"),
        ("mariadb://root@db:3306/app", "mysql+asyncmy://root@db:3306/app?charset=utf8mb4"),
        ("mysql+pymysql://root@db/app?charset=latin1", "mysql+asyncmy://root@db/app?charset=latin1"),
        ("sqlite:///./local.db", "sqlite+aiosqlite:///./local.db"),
        ("sqlite:////var/data/app.db", "sqlite+aiosqlite:////var/data/app.db"),
    ],
)
def test_pasted_urls_map_to_the_async_driver(pasted: str, expected: str) -> None:
    assert to_async_url(pasted).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("oracle://scott@db/orcl", "unsupported database 'oracle'"),
        ("not a url", "not a database URL"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite is not supported"),
    ],
)
def test_bad_database_url_is_one_line_naming_the_variable(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(database_url=url, _env_file=None)
    text = str(error.value)
    assert text.startswith("configuration error: DATABASE_URL: ")
    assert message in text
    assert "\n" not in text


def test_default_database_is_a_file_in_the_project() -> None:
    url = load_settings(_env_file=None).async_database_url
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(PROJECT_ROOT / "app.db")


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("db_pool_size", "lots", "DB_POOL_SIZE"),
        ("db_pool_size", 0, "DB_POOL_SIZE"),
        ("db_max_overflow", -1, "DB_MAX_OVERFLOW"),
        ("db_pool_timeout", 0, "DB_POOL_TIMEOUT"),
        ("db_pool_pre_ping", "maybe", "DB_POOL_PRE_PING"),
        ("access_token_expire_minutes", 0, "ACCESS_TOKEN_EXPIRE_MINUTES"),
        ("environment", "staging", "ENVIRONMENT"),
        ("admin_email", "not-an-email", "ADMIN_EMAIL"),
    ],
)
def test_bad_value_names_the_variable(field: str, value: object, variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^configuration error: {variable}: "):
        load_settings(**{field: value, "_env_file": None})


def test_production_requires_a_strong_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        load_settings(environment="production", _env_file=None)
    for weak in ("changethis", "short", "a" * 64):
        with pytest.raises(ConfigError, match="SECRET_KEY is too weak"):
            load_settings(environment="production", secret_key=weak, _env_file=None)
    strong = "kq3V8-xPz0RmT4wYb7NcLd2Fh9JsGa5UeQo1Ki6"
    assert load_settings(environment="production", secret_key=strong, _env_file=None).jwt_secret == strong


def test_admin_email_needs_a_password() -> None:
    with pytest.raises(ConfigError, match="ADMIN_PASSWORD must be 8-128 characters"):
        load_settings(admin_email="root@example.com", _env_file=None)


def test_pgbouncer_needs_postgresql_and_the_migrations_address_is_a_database_url() -> None:
    with pytest.raises(ConfigError, match="DB_PGBOUNCER=true needs a PostgreSQL DATABASE_URL"):
        load_settings(database_url="sqlite:///./x.db", db_pgbouncer=True, _env_file=None)
    with pytest.raises(ConfigError, match="MIGRATIONS_DATABASE_URL: unsupported database 'redis'"):
        load_settings(migrations_database_url="redis://localhost", _env_file=None)
    with pytest.raises(ConfigError, match=r"needs MIGRATIONS_DATABASE_URL .* to migrate at startup"):
        load_settings(database_url="postgresql://app@pgbouncer:6432/blog", db_pgbouncer=True, _env_file=None)
    settings = load_settings(
        database_url="postgresql://app@pgbouncer:6432/blog",
        db_pgbouncer=True,
        migrations_database_url=" postgres://app@primary:5432/blog ",
        _env_file=None,
    )
    assert settings.async_migrations_url.render_as_string() == "postgresql+asyncpg://app@primary:5432/blog"
    blank = load_settings(migrations_database_url="  ", _env_file=None)
    assert blank.migrations_database_url is None
    assert blank.async_migrations_url == blank.async_database_url


def test_startup_with_a_bad_value_prints_one_line_and_no_traceback(tmp_path: os.PathLike[str]) -> None:
    env = {**os.environ, "DB_POOL_SIZE": "several"}
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "configuration error: DB_POOL_SIZE: Input should be a valid integer, unable to parse string as an integer"
    ]


def _options(url: str, **overrides: object) -> dict[str, object]:
    settings: Settings = load_settings(database_url=url, _env_file=None, **overrides)
    return engine_options(settings, settings.async_database_url)


def test_pool_settings_reach_the_engine_where_the_dialect_takes_them() -> None:
    server = _options("postgresql://u@db/app", db_pool_size=7, db_max_overflow=3, db_pool_timeout=2.5)
    assert server["pool_size"] == 7
    assert server["max_overflow"] == 3
    assert server["pool_timeout"] == 2.5
    assert server["pool_pre_ping"] is False
    assert _options("postgresql://u@db/app", db_pool_pre_ping=True)["pool_pre_ping"] is True
    assert server["pool_recycle"] == 1800
    assert server["connect_args"] == {"timeout": 2.5, "command_timeout": 5.0}
    assert server["hide_parameters"] is True
    assert callable(_options("mysql://u@db/app", db_pool_timeout=2.5)["async_creator"])
    sqlite = _options("sqlite:///./x.db")
    assert "pool_pre_ping" not in sqlite
    assert "pool_recycle" not in sqlite
    assert "connect_args" not in sqlite
    assert _options("sqlite:///./x.db", db_echo=True)["hide_parameters"] is False
    # Behind PgBouncer: no statement cached or prepared under a name (tests/test_pgbouncer.py).
    bounced = _options("postgresql://u@pgbouncer/app", db_pgbouncer=True, migrate_on_startup=False)["connect_args"]
    assert isinstance(bounced, dict)
    assert bounced["statement_cache_size"] == 0
    assert bounced["prepared_statement_name_func"]() == ""
    assert bounced["timeout"] == 5.0
