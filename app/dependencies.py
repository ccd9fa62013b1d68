"""App-wide request dependencies (the database session's is in app.database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings


def _app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_app_settings)]
