from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import NotAuthenticated
from app.security import AccessToken, create_access_token, hash_password, needs_rehash, verify_password
from app.users import repository as users
from app.users.schemas import normalize_email


class InvalidCredentials(NotAuthenticated):
    detail = "Incorrect email or password"


async def issue_token(session: AsyncSession, *, email: str, password: str, settings: Settings) -> AccessToken:
    """Wrong password, unknown email and deactivated account fail alike, in about the same time."""
    user = await users.get_by_email(session, normalize_email(email))
    # Give the pooled connection back before argon2 runs: a queue of logins must not hold
    # connections that every other request needs.
    await session.reset()
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        raise InvalidCredentials()
    password_hash = user.password_hash
    if needs_rehash(password_hash):
        # The hashing parameters were raised since this hash was made: upgrade it now that we
        # know the password -- unless the password changed (or the account went) meanwhile.
        upgraded = await hash_password(password)
        if not await users.replace_password_hash(session, user.id, old=password_hash, new=upgraded):
            raise InvalidCredentials()
        password_hash = upgraded
    return create_access_token(
        user_id=user.id,
        password_hash=password_hash,
        secret=settings.jwt_secret,
        lifetime=timedelta(minutes=settings.access_token_expire_minutes),
    )
