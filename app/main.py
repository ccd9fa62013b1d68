"""The ASGI app: `app.main:app`, or `create_app(settings)` for tests and embedding.

`python -m app serve` runs it through `app.serving`, which adds the process-level tuning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from importlib import metadata

from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.routing import Route

from app.admin import install_admin
from app.auth.router import router as auth_router
from app.body_limit import BodyLimit
from app.comments.router import router as comments_router
from app.config import Settings, get_settings
from app.database import Database, HandlesRoute, check_routes
from app.database_metrics import observe_database
from app.docs import install_docs
from app.engines import create_migrations_engine
from app.error_handlers import install_error_handlers
from app.errors import one_line
from app.health.router import router as health_router
from app.logs import configure_logging
from app.metrics import METRICS_PATH, Metrics, multiprocess_directory, serve_metrics
from app.migrations import Migration, check_revision, migrate
from app.openapi import document_contract
from app.posts.router import router as posts_router
from app.rate_limits import RateLimits
from app.request_context import RequestContext
from app.tracing import install_tracing
from app.users import service as users
from app.users.errors import EmailTaken
from app.users.router import router as users_router

logger = logging.getLogger("app")


class StartupError(RuntimeError):
    """Startup could not complete; the message says why in one line."""


async def _bootstrap_admin(database: Database, *, email: str, password: str, name: str) -> None:
    """The ADMIN_* account, in a unit of work of its own. Several workers starting at once race
    to create it: whoever loses tries again, and finds and promotes the row the winner wrote."""
    for _ in range(2):
        try:
            async with database.unit_of_work() as session:
                await users.ensure_admin(session, email=email, password=password, name=name)
        except (EmailTaken, IntegrityError):
            continue
        return
    raise RuntimeError(f"could not create or promote the admin account {email}")


async def _migrate(settings: Settings) -> Migration:
    """Startup's migration, on an engine of its own: behind PgBouncer it must reach PostgreSQL itself."""
    engine = create_migrations_engine(settings)
    try:
        return await migrate(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database: Database = app.state.db
    metrics: Metrics | None = app.state.metrics
    revision: str | None = None
    target = database.engine.url  # named in a failure: the migrations' address while they run
    try:
        if settings.migrate_on_startup:
            target = settings.async_migrations_url
            migration = await _migrate(settings)
            target = database.engine.url
            revision = migration.after
            if migration.applied:
                logger.info("database migrated", extra={"before": migration.before or "0000", "after": migration.after})
        else:
            try:
                revision = await check_revision(database.engine)
            except (SQLAlchemyError, OSError) as exc:
                # Not migrating, so a database that is down now is no reason not to start:
                # requests get 503s, /health/ready says why, and service resumes when it is back.
                logger.warning(
                    "could not check the database's revision at startup", extra={"error": type(exc).__name__}
                )
        if metrics is not None:
            metrics.set_info(version=_version(app), schema_revision=revision)
        if settings.admin_email and settings.admin_password:
            password = settings.admin_password.get_secret_value()
            await _bootstrap_admin(database, email=settings.admin_email, password=password, name=settings.admin_name)
    except Exception as exc:  # noqa: BLE001 -- any startup failure becomes one clear line
        await database.dispose()
        await app.state.rate_limits.close()
        raise StartupError(f"startup failed against {target.render_as_string()}: {one_line(exc)}") from None
    sampling = asyncio.create_task(metrics.keep_sampling()) if metrics and multiprocess_directory() else None
    watching = None
    if database.replicas is not None:
        await database.replicas.check()  # so that the first reads may already use them
        watching = asyncio.create_task(database.replicas.keep_watching())
    try:
        yield
    finally:
        for task in (sampling, watching):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task  # before the engines it uses are disposed
        await database.dispose()
        await app.state.rate_limits.close()
        if metrics is not None:
            metrics.process_stopped()


def _version(app: FastAPI) -> str:
    try:
        return metadata.version("blogapi")
    except metadata.PackageNotFoundError:  # run from a bare copy of the source
        return app.version


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # First, so that everything after -- building the engines included -- logs the app's way.
    configure_logging(level=settings.log_level, renderer=settings.log_renderer)
    app = FastAPI(
        title="Blog API",
        summary="Users, authentication, posts and comments over async SQLAlchemy.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by app.docs from the app's own copies of their assets, not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Creating the engine opens no connection; the first request (or the migration) does.
    app.state.db = Database.from_settings(settings)
    app.state.metrics = metrics = Metrics() if settings.metrics_enabled else None
    observe_database(app.state.db, metrics=metrics, slow_statement_ms=settings.db_slow_query_ms)
    # Like the engine, a Redis storage connects at its first use, not here.
    app.state.rate_limits = RateLimits.from_settings(settings)
    # Routes added to the app itself (embedding, tests) get their database handles the same way.
    app.router.route_class = HandlesRoute
    install_error_handlers(app)
    # An oversized body is refused before anything but the request's id and its count.
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    # Last added, so outermost: every response, even a 413 or a 500, has an id, a log line and a count.
    app.add_middleware(
        RequestContext, routes=app.router.routes, metrics=metrics, trusted_proxies=settings.trusted_proxies
    )
    for router in (health_router, auth_router, users_router, posts_router, comments_router):
        # The routes themselves, not the router: each APIRouter already gave its routes their full
        # path and tags, and FastAPI matches an included router's routes through a wrapper per
        # router, which cost about as much per request as our whole dependency tree.
        app.router.routes.extend(router.routes)
    if metrics is not None:
        # Not an API route: no database handles, no OpenAPI entry (README: Operations).
        app.router.routes.append(Route(METRICS_PATH, serve_metrics, methods=["GET"], include_in_schema=False))
    install_docs(app)
    install_admin(app, app.state.db, settings)
    check_routes(app.router.routes)
    document_contract(app.router.routes)
    install_tracing(app, app.state.db, settings)
    return app


app = create_app()
