from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from app.auth import service
from app.auth.schemas import LoginForm, Token
from app.database import ConnectionDep, HandlesRoute
from app.dependencies import ClientAddressDep, RateLimitsDep, SettingsDep
from app.errors import error_responses
from app.read_positions import act_as

router = APIRouter(prefix="/auth", tags=["auth"], route_class=HandlesRoute)


@router.post("/token", response_model=Token, responses=error_responses(401, 429, 503))
async def login(
    *,
    form: Annotated[LoginForm, Form()],
    connection: ConnectionDep,
    settings: SettingsDep,
    rate_limits: RateLimitsDep,
    address: ClientAddressDep,
    request: Request,
    response: Response,
) -> Token:
    """Exchange an email (`username`) and password for a bearer token; failures are rate-limited."""
    token = await service.issue_token(
        connection,
        email=form.username,
        password=form.password,
        settings=settings,
        rate_limits=rate_limits,
        address=address,
    )
    # A log-in may rewrite the password's hash: the token's first reads must see the account so.
    act_as(request, token.user_id)
    # Tokens are credentials: no cache may keep them (RFC 6749, section 5.1).
    response.headers["Cache-Control"] = "no-store"
    return Token(access_token=token.token, expires_in=token.expires_in)
