"""The admin UI at /admin (sqladmin)."""

from __future__ import annotations

from fastapi import FastAPI

from app.config import Settings
from app.database import Database


def install_admin(app: FastAPI, database: Database, settings: Settings) -> None:
    """Mount the admin UI on `app`."""
