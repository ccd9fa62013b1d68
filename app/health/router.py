from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from app.database import DatabaseDep, HandlesRoute
from app.migrations import database_revision, head_revision

router = APIRouter(prefix="/health", tags=["health"], route_class=HandlesRoute)


class ReplicaHealth(BaseModel):
    name: str
    state: Literal["ok", "lagging", "down"]
    lag_seconds: float | None
    detail: str | None
    reads: int


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None
    revision: str | None = None
    expected_revision: str | None = None
    # With DATABASE_REPLICA_URLS: each replica's state. Informative only: reads fall back to the
    # primary, so a replica down or lagging does not make the service unready.
    replicas: list[ReplicaHealth] | None = None


@router.get("/live", response_model=Health)
async def live() -> Health:
    """The process is up; says nothing about the database."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health, "description": "Not ready"}})
async def ready(database: DatabaseDep) -> Health | JSONResponse:
    """200 when the database answers and is migrated to this code's head revision, else 503."""
    expected = head_revision()
    replicas = (
        [ReplicaHealth.model_validate(item) for item in database.replicas.report()] if database.replicas else None
    )
    try:
        # On the transactional pool, not in line with the requests for the autocommit one: a
        # saturated service is still ready, and says so promptly.
        revision = await database_revision(database.engine)
    except (SQLAlchemyError, OSError) as exc:
        # Whatever stops us from asking -- down, starting up, full, misconfigured -- is "not ready".
        return _unavailable(f"database unavailable: {type(exc).__name__}", None, expected, replicas)
    # Unknown on either side is not ready: code that carries no migrations, or a database never
    # migrated, would otherwise compare equal (None == None) and be served into 503s.
    if expected is None:
        return _unavailable("this code carries no migrations: the install is incomplete", revision, expected, replicas)
    if revision is None:
        detail = f"database is not migrated, this code expects revision {expected}"
        return _unavailable(detail, revision, expected, replicas)
    if revision != expected:
        detail = f"database is at revision {revision}, this code expects {expected}"
        return _unavailable(detail, revision, expected, replicas)
    return Health(status="ok", revision=revision, expected_revision=expected, replicas=replicas)


def _unavailable(
    detail: str, revision: str | None, expected: str | None, replicas: list[ReplicaHealth] | None
) -> JSONResponse:
    body = Health(status="unavailable", detail=detail, revision=revision, expected_revision=expected, replicas=replicas)
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "5"})
