"""`python -m app serve | migrate | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import tempfile

import uvicorn

from app.config import Settings, get_settings
from app.engines import create_engine
from app.errors import one_line
from app.logs import configure_logging
from app.metrics import MULTIPROCESS_DIRECTORY
from app.migrations import Migration, UnknownRevision, migrate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (migrates first when MIGRATE_ON_STARTUP=true)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    commands.add_parser("migrate", help="upgrade the database to the latest revision")
    commands.add_parser("check-config", help="validate the settings and print the database in use")
    from app.seed import SEED_PASSWORD  # noqa: PLC0415 -- the package's __init__ alone: a constant, no seed code

    seed = commands.add_parser("seed", help=f"add sample data (every seeded user's password: {SEED_PASSWORD!r})")
    seed.add_argument("--users", type=int, default=1000)
    seed.add_argument("--posts", type=int, default=10_000)
    seed.add_argument("--comments", type=int, default=20_000)
    seed.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
    args = parser.parse_args(argv)

    # Validate before anything else: a bad setting is one line naming the variable.
    settings = get_settings()
    if args.command == "serve":
        if settings.migrate_on_startup:
            # Once, here, rather than in every worker (or on every reload) at the same time.
            print(describe(asyncio.run(_migrate(settings))), flush=True)
            os.environ["MIGRATE_ON_STARTUP"] = "false"
        if settings.secret_key is None and settings.environment == "development":
            # Workers and reloads are separate processes: they must sign with one key, or a
            # token from one is rejected by the next.
            os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
        _serve(settings, host=args.host, port=args.port, workers=args.workers, reload=args.reload)
    elif args.command == "migrate":
        print(describe(asyncio.run(_migrate(settings))))
    elif args.command == "seed":
        asyncio.run(_seed(settings, users=args.users, posts=args.posts, comments=args.comments, random_seed=args.seed))
    elif args.command == "check-config":
        print(
            f"ok: {settings.environment}, database {settings.async_database_url.render_as_string(hide_password=True)}"
        )


SEED_STATEMENT_TIMEOUT = 3600.0


def _serve(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
    # This process (uvicorn's supervisor) logs like its workers; uvicorn configures nothing itself.
    configure_logging(level=settings.log_level, renderer=settings.log_renderer)
    own_directory = None
    if workers > 1 and settings.metrics_enabled and not os.environ.get(MULTIPROCESS_DIRECTORY):
        # Each worker writes its metrics to files there and a scrape sums them (app.metrics);
        # a fresh directory per run, so no number of an earlier run is counted again.
        own_directory = tempfile.mkdtemp(prefix="blogapi-metrics-")
        os.environ[MULTIPROCESS_DIRECTORY] = own_directory
    try:
        uvicorn.run(
            # Each worker builds the app through the factory, which also tunes its process.
            "app.serving:served_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            proxy_headers=True,
            log_config=None,
            # The app writes one line per request itself, with its route and request id.
            access_log=False,
        )
    finally:
        if own_directory is not None:
            shutil.rmtree(own_directory, ignore_errors=True)


def describe(migration: Migration) -> str:
    """`migrated 0000 -> 0008` (0000: a database never migrated), or `already at 0008`."""
    if not migration.applied:
        return f"already at {migration.after}"
    return f"migrated {migration.before or '0000'} -> {migration.after}"


async def _migrate(settings: Settings) -> Migration:
    engine = create_engine(settings)
    try:
        return await migrate(engine)
    except UnknownRevision as exc:
        raise SystemExit(f"migration refused: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- unreachable, lock timeout, no migrations: one line, no traceback
        raise SystemExit(f"migration failed: {one_line(exc)}") from None
    finally:
        await engine.dispose()


async def _seed(settings: Settings, *, users: int, posts: int, comments: int, random_seed: int) -> None:
    from app.seed import SEED_PASSWORD, seed  # noqa: PLC0415 -- the seed code loads for this command only

    # Bulk loads are not requests: a batch may take longer than DB_COMMAND_TIMEOUT allows one.
    engine = create_engine(settings.model_copy(update={"db_command_timeout": SEED_STATEMENT_TIMEOUT}))
    try:
        report = await seed(engine, users=users, posts=posts, comments=comments, random_seed=random_seed)
    finally:
        await engine.dispose()
    print(
        f"seeded {report.users:,} users, {report.posts:,} posts, {report.comments:,} comments "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s); password: {SEED_PASSWORD!r}"
    )
