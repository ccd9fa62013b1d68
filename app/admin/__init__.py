"""The admin UI at /admin (sqladmin): users, posts and comments, for active admins only.

README, "Admin": who may log in, how long a session lasts, what may be changed and why.
"""

from __future__ import annotations

from typing import cast

from fastapi import FastAPI
from sqladmin import Admin, ModelView

from app.admin.auth import ADMIN_PATH, AdminAuthentication
from app.admin.views import VIEWS
from app.config import Settings
from app.database import Database
from app.engines import for_units_of_work

__all__ = ["ADMIN_PATH", "install_admin"]


def install_admin(app: FastAPI, database: Database, settings: Settings) -> None:
    """Mount the admin UI on `app`."""
    authentication = AdminAuthentication(database=database, settings=settings, rate_limits=app.state.rate_limits)
    admin = Admin(
        app,
        # The app's engine and pool, as its own units of work use them: on SQLite an edit takes
        # the write lock as it begins, so it queues behind another writer instead of failing
        # on a stale snapshot (app.engines).
        engine=for_units_of_work(database.engine),
        base_url=ADMIN_PATH,
        title="Blog API admin",
        authentication_backend=authentication,
    )
    authentication.templates = admin.templates
    for view in VIEWS:
        admin.add_view(_of_its_own(view))


def _of_its_own(view: type[ModelView]) -> type[ModelView]:
    """A subclass for one Admin. sqladmin binds the view *class* to the Admin it is added to
    (engine, templates): sharing one class, the last app built -- a test's, or the module-level
    `app.main:app` -- would serve every app's admin from its own engine."""
    return cast(type[ModelView], type(view.__name__, (view,), {}))
