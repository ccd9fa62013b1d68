from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import OAuth2PasswordRequestForm

from app.auth import service
from app.auth.schemas import Token
from app.database import ConnectionDep, HandlesRoute
from app.dependencies import SettingsDep
from app.errors import error_responses

router = APIRouter(prefix="/auth", tags=["auth"], route_class=HandlesRoute)


@router.post("/token", response_model=Token, responses=error_responses(401, 503))
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> Token:
    """Exchange an email (`username`) and password for a bearer token."""
    token = await service.issue_token(connection, email=form.username, password=form.password, settings=settings)
    # Tokens are credentials: no cache may keep them (RFC 6749, section 5.1).
    response.headers["Cache-Control"] = "no-store"
    return Token(access_token=token.token, expires_in=token.expires_in)
