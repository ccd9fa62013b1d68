"""Password hashing (argon2id) and access tokens (signed JWT)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from app.params import MAX_ID

# OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane (about 20 ms of one core here).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


def _cores() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


# Hashing is CPU-bound. It runs on threads of its own, one per core: it never stalls the event
# loop, never takes the threads of the default pool (where FastAPI runs every plain `def`), and a
# burst of logins uses no more than the cores can work on at once. Always the same threads is also
# what keeps memory flat: a hash allocates 19 MiB, which glibc keeps, once freed, in the arena of
# the thread that freed it, for that thread's next hash. On whichever thread of the default pool
# was free, every arena (up to 8 per core) came to keep a block: 400 MiB instead of 182 after
# 6,000 logins. Returning each block instead (mallopt's M_MMAP_THRESHOLD) made every hash fault
# its 19 MiB in anew: +50 % CPU per login (BENCHMARKS.md, "Memory").
HASHING_THREADS = _cores()
_hashing_threads = ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="argon2")


T = TypeVar("T")


async def _hashing(function: Callable[..., T], *args: str) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_threads, function, *args)


# Verified against when the email is unknown, so an unknown address costs the same time as a
# wrong password and response times do not reveal which accounts exist.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")

ALGORITHM = "HS256"


async def hash_password(password: str) -> str:
    return await _hashing(_hasher.hash, password)


def hash_password_blocking(password: str) -> str:
    """The same hash, on the calling thread: for sync code (the CLI), which has no loop to keep free."""
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) spend the same time and return False."""
    ok = await _hashing(_verify, password_hash or _DUMMY_HASH, password)
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
    user_id: int


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
    return AccessToken(jwt.encode(claims, secret, algorithm=ALGORITHM), int(lifetime.total_seconds()), user_id)


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
