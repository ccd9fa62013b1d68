"""App-wide request dependencies (the database session's is in app.database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.client_address import client_address
from app.config import Settings
from app.rate_limits import RateLimits


async def _app_settings(request: Request) -> Settings:
    # async although it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    # thread, and that hop (with the GIL contention it brings) cost more than a whole query.
    settings: Settings = request.app.state.settings
    return settings


async def _app_rate_limits(request: Request) -> RateLimits:
    rate_limits: RateLimits = request.app.state.rate_limits
    return rate_limits


async def _client_address(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return client_address(request, settings.trusted_proxies)


SettingsDep = Annotated[Settings, Depends(_app_settings)]
RateLimitsDep = Annotated[RateLimits, Depends(_app_rate_limits)]
# The caller's address: the peer, or what a trusted proxy says it forwards for (TRUSTED_PROXIES).
ClientAddressDep = Annotated[str, Depends(_client_address)]
