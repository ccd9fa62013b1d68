"""App-wide request dependencies (the database session's is in app.database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings


async def _app_settings(request: Request) -> Settings:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    # thread, and that hop (with the GIL contention it brings) cost more than a whole query.
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_app_settings)]
