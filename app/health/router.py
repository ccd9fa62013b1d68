from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.database import Database
from app.migrations import current_revision, head_revision

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None
    revision: str | None = None
    expected_revision: str | None = None


@router.get("/live", response_model=Health)
async def live() -> Health:
    """The process is up; says nothing about the database."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health, "description": "Not ready"}})
async def ready(request: Request) -> Health | JSONResponse:
    """200 when the database answers and is migrated to this code's head revision, else 503."""
    database: Database = request.app.state.db
    expected = head_revision()
    try:
        async with database.engine.connect() as connection:
            revision = await current_revision(connection)
    except (SQLAlchemyError, OSError) as exc:
        # Whatever stops us from asking -- down, starting up, full, misconfigured -- is "not ready".
        return _unavailable(f"database unavailable: {type(exc).__name__}", None, expected)
    if revision != expected:
        return _unavailable(f"database is at revision {revision}, this code expects {expected}", revision, expected)
    return Health(status="ok", revision=revision, expected_revision=expected)


def _unavailable(detail: str, revision: str | None, expected: str | None) -> JSONResponse:
    body = Health(status="unavailable", detail=detail, revision=revision, expected_revision=expected)
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
