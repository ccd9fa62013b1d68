"""Login: a password for a token."""

from __future__ import annotations

from datetime import timedelta

from app.auth import repository
from app.config import Settings
from app.database import Connection
from app.emails import normalize_email
from app.errors import NotAuthenticated
from app.rate_limits import RateLimits
from app.security import AccessToken, create_access_token, hash_password, needs_rehash, verify_password


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    detail = "Incorrect email or password"


async def issue_token(
    connection: Connection, *, email: str, password: str, settings: Settings, rate_limits: RateLimits, address: str
) -> AccessToken:
    """Wrong password, unknown email and deactivated account fail alike, in about the same time.

    Failures are limited per account and per client address. The limits are checked first, so a
    throttled caller costs no lookup and no hash, and is told the same whether the account exists.
    """
    login = normalize_email(email)
    attempt = await rate_limits.begin_login(account=login, address=address)
    try:
        token = await _authenticate(connection, login=login, password=password, settings=settings)
    except InvalidCredentials:
        raise  # a failure: the attempt keeps its slots
    except Exception:
        await attempt.abandoned()
        raise
    await attempt.succeeded()
    return token


async def _authenticate(connection: Connection, *, login: str, password: str, settings: Settings) -> AccessToken:
    account = await repository.account_by_email(connection, login)
    # Give the pooled connection back before argon2 runs: a queue of logins must not hold
    # connections that every other request needs.
    await connection.release()
    valid = await verify_password(account.password_hash if account else None, password)
    if account is None or not valid or not account.is_active:
        raise InvalidCredentials()
    password_hash: str = account.password_hash
    if needs_rehash(password_hash):
        # The hashing parameters were raised since this hash was made: upgrade it now that we
        # know the password -- unless the password changed (or the account went) meanwhile.
        upgraded = await hash_password(password)
        if not await repository.replace_password_hash(connection, account.id, old=password_hash, new=upgraded):
            raise InvalidCredentials()
        password_hash = upgraded
    return create_access_token(
        user_id=account.id,
        password_hash=password_hash,
        secret=settings.jwt_secret,
        lifetime=timedelta(minutes=settings.access_token_expire_minutes),
    )
