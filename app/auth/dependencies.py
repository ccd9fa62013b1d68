"""Who is calling: the bearer token resolved to a live, active account."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer

from app.database import SessionDep
from app.dependencies import SettingsDep
from app.errors import NotAuthenticated
from app.models import User
from app.security import decode_access_token, password_fingerprint

_bearer = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


async def _optional_user(
    session: SessionDep, settings: SettingsDep, token: Annotated[str | None, Depends(_bearer)]
) -> User | None:
    """None for an anonymous caller; a token that is present but not valid is a 401, not anonymity."""
    if token is None:
        return None
    claims = decode_access_token(token, secret=settings.jwt_secret)
    if claims is None:
        raise NotAuthenticated("Invalid or expired token")
    # Checked on every request, so deleting or deactivating an account, or changing its
    # password, takes effect at once rather than when the token expires.
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active or password_fingerprint(user.password_hash) != claims.password_fingerprint:
        raise NotAuthenticated("Invalid or expired token")
    return user


async def _required_user(user: Annotated[User | None, Depends(_optional_user)]) -> User:
    if user is None:
        raise NotAuthenticated()
    return user


OptionalUser = Annotated[User | None, Depends(_optional_user)]
CurrentUser = Annotated[User, Depends(_required_user)]
