"""Password hashing (argon2id) and access tokens (signed JWT)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.params import MAX_ID

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane (about 20 ms of one core here).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)

# Hashing is CPU-bound and runs in worker threads so it never stalls the event loop. A limiter of
# its own keeps a burst of logins from occupying every thread of the default pool, and from
# using more than the cores can work on at once.
_hash_limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))

# Verified against when the email is unknown, so an unknown address costs the same time as a
# wrong password and response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")

ALGORITHM = "HS256"


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_hash_limiter)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) spend the same time and return False."""
    ok = await anyio.to_thread.run_sync(_verify, password_hash or _DUMMY_HASH, password, limiter=_hash_limiter)
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_fingerprint(password_hash: str) -> str:
    """A short digest of the stored hash, carried in tokens: changing the password revokes them."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    password_fingerprint: str


def create_access_token(*, user_id: int, password_hash: str, secret: str, lifetime: timedelta) -> AccessToken:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "pwd": password_fingerprint(password_hash),
    }
    return AccessToken(jwt.encode(claims, secret, algorithm=ALGORITHM), int(lifetime.total_seconds()))


def decode_access_token(token: str, *, secret: str) -> TokenClaims | None:
    """The token's claims, or None when it is malformed, forged, expired or uses another algorithm."""
    try:
        # Pinning the algorithm rejects `alg: none` and key-confusion tokens.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp", "iat", "pwd"]})
    except jwt.InvalidTokenError:
        return None
    # Signed by us, yet naming no possible account: invalid like any other, rather than a query
    # the database refuses (PostgreSQL's integer ends at 2^31-1). We write `sub` as str(id), so
    # anything else ("007", " 7", a full-width 7) is not ours either.
    sub = claims["sub"]
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit() and sub == str(int(sub))):
        return None
    if not 1 <= int(sub) <= MAX_ID:
        return None
    return TokenClaims(user_id=int(sub), password_fingerprint=str(claims["pwd"]))
