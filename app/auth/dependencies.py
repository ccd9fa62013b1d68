"""Who is calling: the bearer token resolved to a live, active account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.auth.viewer import Viewer
from app.config import Settings
from app.database import Database
from app.errors import InvalidToken, NotAuthenticated
from app.security import decode_access_token, password_fingerprint
from app.users import repository as users

_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def _optional_user(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Viewer | None:
    """None for an anonymous caller; a token that is present but not valid is a 401, not anonymity."""
    if token is None:
        return None
    # Settings and database straight from the app, not as dependencies: this runs on nearly every
    # request, and each dependency FastAPI resolves costs more than these two lookups.
    settings: Settings = request.app.state.settings
    claims = decode_access_token(token, secret=settings.jwt_secret)
    if claims is None:
        raise InvalidToken()
    # Checked on every request, so deleting or deactivating an account, or changing its
    # password, takes effect at once rather than when the token expires. A connection of its
    # own, given back at once: the lookup is not part of the request's unit of work.
    database: Database = request.app.state.db
    async with database.reading() as connection:
        account = await users.read_account(connection, claims.user_id)
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
