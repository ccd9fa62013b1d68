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
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import coredis
from coredis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from app.bounded_log import BoundedLog
from app.config import Settings
from app.errors import AppError
from app.replicas import Replica, Replicas, format_lsn, parse_lsn, primary_position
from app.security import decode_access_token

logger = logging.getLogger(__name__)
_storage_failures = BoundedLog(logger)

HEADER = "X-Write-Position"
_READS = frozenset({"GET", "HEAD"})
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
        if not shared:
            logger.warning(
                "write positions are kept in this process only: with several processes behind one address, "
                "set RATE_LIMIT_STORAGE_URL to a redis:// or rediss:// URL so that they share them"
            )
        return cls(
            # Two seconds more than a replica may lag: the WAL writer's delay and the watcher's
            # interval, with room to spare.
            lifetime=settings.db_replica_max_lag + 2,
            redis=coredis.Redis.from_url(url, decode_responses=True) if shared else None,
            prefix=settings.rate_limit_key_prefix,
            timeout=settings.rate_limit_storage_timeout,
        )

    async def get(self, user_id: int) -> int | None:
        """The user's last write position (this process's or any's), None when there is none to keep."""
        position, until = self._local.get(user_id, (0, 0.0))
        local = position if until > time.monotonic() else None
        if self._redis is None:
            return local
        try:
            async with asyncio.timeout(self._timeout):
                stored = await self._redis.get(self._key(user_id))
        except (RedisError, OSError, TimeoutError) as exc:
            # Not knowing where the user wrote, only the primary is sure to have it.
            error = type(exc).__name__
            _storage_failures.warning(error, "cannot read write positions from Redis", error=error)
            return ON_PRIMARY
        shared = int(stored) if stored else None
        return max(local or 0, shared or 0) or None

    async def remember(self, user_id: int, position: int) -> None:
        # Here always (this process's reads stay right even when Redis fails), and in Redis if any.
        now = time.monotonic()
        if len(self._local) > 100_000:  # forget the expired before growing further
            self._local = {user: kept for user, kept in self._local.items() if kept[1] > now}
        known, until = self._local.get(user_id, (0, 0.0))
        self._local[user_id] = (max(position, known if until > now else 0), now + self._lifetime)
        if self._redis is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                lifetime_ms = round(self._lifetime * 1000)
                await self._redis.eval(_KEEP_GREATEST, keys=[self._key(user_id)], args=[position, lifetime_ms])
        except (RedisError, OSError, TimeoutError) as exc:
            # This process still knows, and answers with the header; others may read older data meanwhile.
            error = type(exc).__name__
            _storage_failures.warning(error, "cannot store write positions in Redis", error=error)

    def close(self) -> None:
        if self._redis is not None:
            self._redis.connection_pool.disconnect()

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

    @classmethod
    def for_request(cls, request: Request, replicas: Replicas | None, positions: Positions | None) -> ReadRoute | None:
        """A read request's route, with replicas; None otherwise: the primary serves."""
        if replicas is None or positions is None or request.method not in _READS:
            return None
        return cls(request, replicas, positions, request.app.state.settings.jwt_secret)

    def __init__(self, request: Request, replicas: Replicas, positions: Positions, secret: str) -> None:
        self._request, self._replicas, self._positions, self._secret = request, replicas, positions, secret
        self._required: int | None = None
        self._known = False
        self._chosen: Replica | None = None

    async def replica(self) -> Replica | None:
        if not self._known:
            self._required, self._known = await required_position(self._request, self._positions, self._secret), True
            self._chosen = self._replicas.for_read(self._required)
        if self._chosen is not None and (self._chosen.replayed is None or self._chosen.gate.busy):
            self._chosen = self._replicas.for_read(self._required)  # it went down, or filled up, since
        return self._chosen

    def failed(self, replica: Replica, error: BaseException, *, connecting: bool = False) -> None:
        self._replicas.failed(replica, error, connecting=connecting)
        self._chosen = None


_ACTING_USER = "app.read_positions.acting_user"


def act_as(request: Request, user_id: int) -> None:
    """The user a write acted for when the request's token does not say: a sign-up, a log-in.
    Their first reads with the new token then see the account as the write left it."""
    request.scope[_ACTING_USER] = user_id


async def remember_write(
    request: Request,
    response: Response,
    positions: Positions,
    primary: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
) -> None:
    """After a write: where the primary's WAL is, for the client (a header) and its user's next reads."""
    try:
        async with primary() as connection:
            position: int | None = await primary_position(connection)
    except (SQLAlchemyError, OSError):
        position = None  # committed, but where is unknown: the user's reads stay on the primary
    if position is not None:
        response.headers[HEADER] = format_lsn(position)
    user_id = request.scope.get(_ACTING_USER) or signed_in_user(request, request.app.state.settings.jwt_secret)
    if user_id is not None:
        # Unknown, the user's next reads stay on the primary, which has the write for sure.
        await positions.remember(user_id, ON_PRIMARY if position is None else position)
