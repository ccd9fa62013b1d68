"""Who is calling: the bearer token resolved to a live, active account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth import repository
from app.config import Settings
from app.database import request_connection
from app.errors import InvalidToken, NotAuthenticated
from app.security import decode_access_token, password_fingerprint
from app.viewer import Viewer

_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def _optional_user(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Viewer | None:
    """None for an anonymous caller; a token that is present but not valid is a 401, not anonymity."""
    if token is None:
        return None
    # Settings and the connection straight from the app and the request, not as dependencies:
    # this runs on nearly every request, and each dependency FastAPI resolves costs more.
    settings: Settings = request.app.state.settings
    claims = decode_access_token(token, secret=settings.jwt_secret)
    if claims is None:
        raise InvalidToken()
    # Checked on every request, so deleting or deactivating an account, or changing its
    # password, takes effect at once rather than when the token expires. The connection goes
    # back at once: a write request must not hold it through its unit of work (or a hash).
    connection = request_connection(request)
    account = await repository.read_account(connection, claims.user_id)
    await connection.release()
    if (
        account is None
        or not account.is_active
        or password_fingerprint(account.password_hash) != claims.password_fingerprint
    ):
        raise InvalidToken()
    return Viewer.from_row(account)


async def _required_user(user: Annotated[Viewer | None, Depends(_optional_user)]) -> Viewer:
    if user is None:
        raise NotAuthenticated()
    return user


OptionalUser = Annotated[Viewer | None, Depends(_optional_user)]
CurrentUser = Annotated[Viewer, Depends(_required_user)]
