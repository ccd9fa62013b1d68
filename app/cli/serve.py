"""`blogapi serve` and `blogapi check-config`."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from typing import Annotated

import typer
import uvicorn

from app.cli.common import out, redacted
from app.cli.db import describe, upgrade_to
from app.config import Settings, get_settings
from app.logs import configure_logging
from app.metrics import MULTIPROCESS_DIRECTORY


def register(cli: typer.Typer) -> None:
    cli.command("serve")(serve)
    cli.command("check-config")(check_config)


def serve(
    host: Annotated[str, typer.Option(envvar="HOST", help="Interface to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[
        int, typer.Option(envvar="WEB_CONCURRENCY", min=1, help="Worker processes (README: Several workers).")
    ] = 1,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API with uvicorn; first migrates the database when MIGRATE_ON_STARTUP=true."""
    settings = get_settings()
    if settings.migrate_on_startup:
        # Once, here, rather than in every worker (or on every reload) at the same time.
        out.print(describe(asyncio.run(upgrade_to(settings, "head"))), markup=False)
        os.environ["MIGRATE_ON_STARTUP"] = "false"
    if settings.secret_key is None and settings.environment == "development":
        # Workers and reloads are separate processes: they must sign with one key, or a token
        # from one is rejected by the next.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(48)
    _run_uvicorn(settings, host=host, port=port, workers=workers, reload=reload)


def check_config() -> None:
    """Validate the settings and print the environment and the database in use."""
    settings = get_settings()
    out.print(f"ok: {settings.environment}, database {redacted(settings.async_database_url)}", markup=False)


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
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
