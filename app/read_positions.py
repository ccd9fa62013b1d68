"""Read-your-writes: the WAL position a client's reads must have seen, remembered after its writes.

After a write, with replicas configured, the response carries the primary's WAL position in
`X-Write-Position`; any client may send it back on a read to get data at least that new. For a
signed-in user the app also remembers it: in the process, or in Redis when the rate limits'
storage (`RATE_LIMIT_STORAGE_URL`) is one, so that every process knows. Remembered for
DB_REPLICA_MAX_LAG plus a second: by then every replica reads may use has replayed it anyway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import coredis
from coredis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from app.bounded_log import BoundedLog
from app.config import Settings
from app.errors import AppError
from app.replicas import Replica, Replicas, format_lsn, parse_lsn
from app.security import decode_access_token

logger = logging.getLogger(__name__)
_storage_failures = BoundedLog(logger)

HEADER = "X-Write-Position"
# Beyond any position a replica reports: the reads it is required for stay on the primary. Under
# 2^53, so Redis's Lua, which counts in doubles, compares it exactly.
ON_PRIMARY = 1 << 52
# Keeps the greater of the stored and the new position (two processes may finish a user's writes
# out of order), and renews its lifetime.
_KEEP_GREATEST = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > stored then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class BadWritePosition(AppError):
    status_code = 400
    code = "bad_write_position"
    detail = f"{HEADER} must be a WAL position as this service sent it, such as 0/16B3748"


class Positions:
    """The last write position of each signed-in user, for a while: here, or in a shared Redis."""

    def __init__(self, *, lifetime: float, redis: Any | None, prefix: str, timeout: float) -> None:
        self._lifetime, self._redis, self._prefix, self._timeout = lifetime, redis, prefix, timeout
        self._local: dict[int, tuple[int, float]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Positions:
        url = settings.rate_limit_storage_url
        shared = settings.rate_limit_enabled and url.split("://", 1)[0].lower() in ("redis", "rediss")
        redis = coredis.Redis.from_url(url, decode_responses=True) if shared else None
        lifetime = settings.db_replica_max_lag + 1
        return cls(
            lifetime=lifetime,
            redis=redis,
            prefix=settings.rate_limit_key_prefix,
            timeout=settings.rate_limit_storage_timeout,
        )

    async def get(self, user_id: int) -> int | None:
        if self._redis is None:
            position, until = self._local.get(user_id, (0, 0.0))
            return position if until > time.monotonic() else None
        try:
            async with asyncio.timeout(self._timeout):
                stored = await self._redis.get(self._key(user_id))
        except (RedisError, OSError, TimeoutError) as exc:
            # Not knowing where the user wrote, only the primary is sure to have it.
            _storage_failures.warning(
                type(exc).__name__, "cannot read write positions from Redis", error=type(exc).__name__
            )
            return ON_PRIMARY
        return int(stored) if stored else None

    async def remember(self, user_id: int, position: int) -> None:
        if self._redis is None:
            now = time.monotonic()
            if len(self._local) > 100_000:  # forget the expired before growing further
                self._local = {user: kept for user, kept in self._local.items() if kept[1] > now}
            known, until = self._local.get(user_id, (0, 0.0))
            self._local[user_id] = (max(position, known if until > now else 0), now + self._lifetime)
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.eval(
                    _KEEP_GREATEST, keys=[self._key(user_id)], args=[position, round(self._lifetime * 1000)]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            # This process still answers with the header; other processes may read older data meanwhile.
            _storage_failures.warning(
                type(exc).__name__, "cannot store write positions in Redis", error=type(exc).__name__
            )

    def _key(self, user_id: int) -> str:
        return f"{self._prefix}:write-position:{user_id}"


def header_position(request: Request) -> int | None:
    """The position the client sent back, if any; BadWritePosition when it is not one."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    try:
        return parse_lsn(value)
    except ValueError:
        raise BadWritePosition() from None


def signed_in_user(request: Request, secret: str) -> int | None:
    """The user a valid bearer token names; whether the account is still allowed is auth's business."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    claims = decode_access_token(token.strip(), secret=secret)
    return claims.user_id if claims is not None else None


async def required_position(request: Request, positions: Positions, secret: str) -> int | None:
    """The position this request's reads must have seen: the client's own, or its user's last write."""
    required = header_position(request)
    user_id = signed_in_user(request, secret)
    if user_id is not None and (stored := await positions.get(user_id)) is not None:
        required = max(required or 0, stored)
    return required


class ReadRoute:
    """Where one read request's statements go: the replica chosen at its first statement, as long
    as it serves; the primary when none has what the client must see, or once one has failed."""

    __slots__ = ("_chosen", "_known", "_positions", "_replicas", "_request", "_required", "_secret")

    def __init__(self, request: Request, replicas: Replicas, positions: Positions, secret: str) -> None:
        self._request, self._replicas, self._positions, self._secret = request, replicas, positions, secret
        self._required: int | None = None
        self._known = False
        self._chosen: Replica | None = None

    async def replica(self) -> Replica | None:
        if not self._known:
            self._required, self._known = await required_position(self._request, self._positions, self._secret), True
            self._chosen = self._replicas.for_read(self._required)
        if self._chosen is not None and self._chosen.replayed is None:  # it went down since
            self._chosen = None
        return self._chosen

    def failed(self, replica: Replica, error: BaseException) -> None:
        self._replicas.failed(replica, error)
        self._chosen = None


async def remember_write(request: Request, response: Response, positions: Positions, position: int | None) -> None:
    """A write's position (None: committed, but where is unknown) for the client and its user's reads."""
    if position is not None:
        response.headers[HEADER] = format_lsn(position)
    user_id = signed_in_user(request, request.app.state.settings.jwt_secret)
    if user_id is not None:
        # Unknown, the user's next reads stay on the primary, which has the write for sure.
        await positions.remember(user_id, ON_PRIMARY if position is None else position)
