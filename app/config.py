"""Settings from the environment (and an optional `.env` file), validated once at startup."""

from __future__ import annotations

import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import EmailStr, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from app.setting_values import (
    check_rate_limit,
    parse_networks,
    parse_replica_urls,
    to_async_storage_url,
    to_async_url,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A checkout keeps its development database beside the code; an installed package (whose parent
# is site-packages) keeps it in the directory it is run from.
_DATA_DIRECTORY = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()
DEFAULT_DATABASE_URL = f"sqlite:///{_DATA_DIRECTORY / 'app.db'}"

# Secrets that appear in tutorials and templates; a production deploy with one of them is a
# deploy whose tokens anyone can forge.
_KNOWN_WEAK_SECRETS = {"changethis", "changeme", "secret", "secret-key", "your-secret-key", "dev"}
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(SystemExit):
    """A bad setting: exits the process with one line naming the variable, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")


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
    # PgBouncer in transaction mode sits between the app and PostgreSQL (README: Scaling out): no
    # prepared statement outlives its transaction. Migrations then need PostgreSQL's own address.
    db_pgbouncer: bool = False
    migrations_database_url: str | None = None
    # Streaming replicas that serve reads (README: Scaling out), and how far behind the primary
    # one may be and still serve a client that has not written.
    database_replica_urls: Annotated[tuple[str, ...], NoDecode] = ()
    db_replica_max_lag: float = Field(default=5.0, gt=0, le=3600)

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

    # Throttles on credentials (README: Rate limits), in the `limits` syntax ("10/15 minutes").
    rate_limit_enabled: bool = True
    rate_limit_login_account: str = "10/15 minutes"
    rate_limit_login_address: str = "100/15 minutes"
    rate_limit_signup_address: str = "20/hour"
    rate_limit_storage_url: str = "memory://"
    # No ":", which ends the prefix in a key: one deployment's prefix never starts another's keys.
    rate_limit_key_prefix: str = Field(default="blogapi", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    # Seconds one call to the storage may take before the throttle gives up on it (and lets the request through).
    rate_limit_storage_timeout: float = Field(default=0.5, gt=0, le=30)
    # Peers whose X-Forwarded-For is believed: comma-separated addresses or networks, none by default.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()

    # What the service tells its operators (README: Operations).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Unset: readable lines in development, one JSON object per line in production.
    log_format: Literal["console", "json"] | None = None
    metrics_enabled: bool = True
    # A statement slower than this is logged with its SQL (never its parameters); 0 logs none.
    db_slow_query_ms: float = Field(default=200.0, ge=0, le=3_600_000)
    # Set (OpenTelemetry's own variable), requests and statements are traced: `pip install .[otel]`.
    otel_exporter_otlp_endpoint: str | None = None

    @field_validator("database_url", "migrations_database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None:
            to_async_url(value)
        return value.strip() if value else value

    @field_validator("rate_limit_login_account", "rate_limit_login_address", "rate_limit_signup_address")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        check_rate_limit(value)
        return value.strip()

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _check_rate_limit_storage_url(cls, value: str) -> str:
        to_async_storage_url(value)
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_trusted_proxies(cls, value: object) -> object:
        return parse_networks(value) if isinstance(value, str) else value

    @field_validator("database_replica_urls", mode="before")
    @classmethod
    def _parse_replica_urls(cls, value: object) -> object:
        return parse_replica_urls(value) if isinstance(value, str) else value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if value.lower() in {"debug", "info", "warning", "error", "critical"} else value.lower()

    @field_validator("admin_email", "migrations_database_url", "otel_exporter_otlp_endpoint", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
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
        if self.db_pgbouncer and self.async_database_url.get_backend_name() != "postgresql":
            raise ValueError("DB_PGBOUNCER=true needs a PostgreSQL DATABASE_URL (PgBouncer's address)")
        if self.database_replica_urls and self.async_database_url.get_backend_name() != "postgresql":
            raise ValueError("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL (the replicas' primary)")
        if self.db_pgbouncer and self.migrate_on_startup and self.migrations_database_url is None:
            raise ValueError(
                "DB_PGBOUNCER=true needs MIGRATIONS_DATABASE_URL (PostgreSQL's own address) to migrate at "
                "startup, or MIGRATE_ON_STARTUP=false"
            )
        return self

    @property
    def async_database_url(self) -> URL:
        return to_async_url(self.database_url)

    @property
    def async_migrations_url(self) -> URL:
        """Where migrations, their lock and the seed go: PostgreSQL itself, even behind PgBouncer."""
        if self.migrations_database_url is None:
            return self.async_database_url
        return to_async_url(self.migrations_database_url)

    @property
    def async_replica_urls(self) -> tuple[URL, ...]:
        return tuple(to_async_url(url) for url in self.database_replica_urls)

    @property
    def log_renderer(self) -> Literal["console", "json"]:
        return self.log_format or ("json" if self.environment == "production" else "console")

    @property
    def rate_limit_storage(self) -> str:
        return to_async_storage_url(self.rate_limit_storage_url)

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
