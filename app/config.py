"""Settings from the environment (and an optional `.env` file), validated once at startup."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import EmailStr, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'app.db'}"

# The async driver each accepted URL scheme is mapped to. People paste URLs from their hosting
# provider (`postgres://...`) or from a sync project (`mysql+pymysql://...`): the driver part is
# ours to choose, the rest of the URL is kept as given.
_ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "sqlite": "sqlite+aiosqlite",
}

# Secrets that appear in tutorials and templates; a production deploy with one of them is a
# deploy whose tokens anyone can forge.
_KNOWN_WEAK_SECRETS = {"changethis", "changeme", "secret", "secret-key", "your-secret-key", "dev"}
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(SystemExit):
    """A bad setting: exits the process with one line naming the variable, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")


def to_async_url(raw: str) -> URL:
    """Map a pasted database URL onto the async driver the app uses."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("not a database URL (expected e.g. postgresql://user@host/db)") from None
    backend = url.drivername.split("+", 1)[0]
    if backend not in _ASYNC_DRIVERS:
        supported = ", ".join(sorted(_ASYNC_DRIVERS))
        raise ValueError(f"unsupported database {backend!r} (supported: {supported})")
    url = url.set(drivername=_ASYNC_DRIVERS[backend])
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or "mode=memory" in str(url):
            # Every pooled connection would see its own empty database.
            raise ValueError("in-memory SQLite is not supported; use a file, e.g. sqlite:///./app.db")
        return url
    if url.get_backend_name() == "postgresql" and "sslmode" in url.query:
        # libpq spells it sslmode, asyncpg spells it ssl; same values.
        query = dict(url.query)
        query["ssl"] = query.pop("sslmode")
        url = url.set(query=query)
    if url.get_backend_name() == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "production"] = "development"

    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    # Also the connect timeout: an unreachable database answers 503 after about this long.
    db_pool_timeout: float = Field(default=5.0, gt=0, le=300)
    # How long one statement of a request may run (SQLite: wait for a lock) before the request
    # gets a 503. It is also how long a request waits on a server that went silent, so it is
    # sized for the client that waits, not for the database: a request's statements take
    # milliseconds (BENCHMARKS.md), clients give up after seconds. Migrations and the seed are
    # not bound by it.
    db_command_timeout: float = Field(default=5.0, gt=0, le=3600)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    # Off: on PostgreSQL the ping is BEGIN; SELECT; ROLLBACK -- three round trips before every
    # checkout, which cost more than the query of a typical request. A dropped connection is
    # found by the request that uses it (a 503 with Retry-After) and the whole pool is replaced.
    db_pool_pre_ping: bool = False
    db_echo: bool = False

    # The largest request body read; a larger one is a 413 before it is read (README: Limits).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, le=1024**3)

    secret_key: SecretStr | None = None
    access_token_expire_minutes: int = Field(default=30, ge=1, le=60 * 24 * 30)
    migrate_on_startup: bool = True
    # How long `upgrade head` waits for another process's migration before giving up.
    migration_lock_timeout: float = Field(default=60.0, gt=0, le=3600)
    # PostgreSQL, during migrations: how long one DDL statement may queue for its table lock --
    # while it queues, every query behind it waits too -- and how long any statement may run.
    migration_ddl_lock_timeout: float = Field(default=5.0, gt=0, le=3600)
    migration_statement_timeout: float = Field(default=600.0, gt=0, le=86400)

    admin_email: EmailStr | None = None
    admin_password: SecretStr | None = None
    admin_name: str = Field(default="Admin", min_length=1, max_length=100)

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        to_async_url(value)
        return value.strip()

    @field_validator("admin_email", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.environment == "production":
            key = self.secret_key.get_secret_value() if self.secret_key else ""
            if not key:
                raise ValueError("SECRET_KEY must be set when ENVIRONMENT=production")
            if len(key) < MIN_SECRET_KEY_LENGTH or key.lower() in _KNOWN_WEAK_SECRETS or len(set(key)) < 10:
                raise ValueError(
                    f"SECRET_KEY is too weak for production: use at least {MIN_SECRET_KEY_LENGTH} random "
                    "characters, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
        if self.admin_email is not None:
            password = self.admin_password.get_secret_value() if self.admin_password else ""
            if not 8 <= len(password) <= 128:
                raise ValueError("ADMIN_PASSWORD must be 8-128 characters when ADMIN_EMAIL is set")
        return self

    @property
    def async_database_url(self) -> URL:
        return to_async_url(self.database_url)

    @property
    def jwt_secret(self) -> str:
        return self.secret_key.get_secret_value() if self.secret_key else _DEVELOPMENT_SECRET


# Development without SECRET_KEY signs with a key that lives as long as the process: safer than a
# well-known default, at the price of tokens not surviving a restart.
_DEVELOPMENT_SECRET = secrets.token_urlsafe(48)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    name = "_".join(str(part) for part in first["loc"]).upper()
    message = first["msg"].removeprefix("Value error, ")
    if not name:  # a cross-field check: its message already names the variables
        return message
    return f"{name}: {message}"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
