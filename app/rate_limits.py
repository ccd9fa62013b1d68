"""Throttles on credentials: failed logins per account and per client address, sign-ups per address.

Each limit (`RATE_LIMIT_*`, in the `limits` syntax) is a fixed window of the `limits` library:
"10/15 minutes" is at most 10 in each 15-minute window, so at most twice that across a window's
end. The counters live in the process (`memory://`, the default) or in Redis, where every worker
and host shares them, under RATE_LIMIT_KEY_PREFIX.

A login takes a slot of both of its limits before anything is looked up or hashed -- in one
atomic step per limit, so a burst of concurrent guesses cannot all pass a check that has counted
none of them yet -- and then keeps it (a wrong password: failures are what is counted) or gives
it back (the right one: the account's failures are forgotten and the address gets its slot back;
an error of ours: both come back). A caller over a limit gets `RateLimited` (429) with the seconds
until its window ends, the same whether or not the account exists.

A storage that is down or slow does not stop logins and sign-ups: the throttles fail open, and
the outage is logged at once, every minute while it lasts, and when it ends. An outage of Redis
must not lock everyone out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import ConfigurationError, StorageError
from limits.storage import storage_from_string

from app.config import ConfigError, Settings
from app.errors import RateLimited

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What the throttles fail open on: the storage refuses, drops the connection or does not answer.
_STORAGE_FAILURES = (StorageError, OSError, TimeoutError)
_OUTAGE_LOG_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class _Count:
    """One limit applied to one caller: a window's counter, keyed by (limit name, caller)."""

    item: RateLimitItem
    identifiers: tuple[str, str]


class LoginAttempt:
    """The slots a login holds while its password is checked. A wrong password keeps them: that
    is the failure being counted, and there is nothing to call."""

    __slots__ = ("_account", "_held", "_limits")

    def __init__(self, limits: RateLimits, account: _Count | None, held: tuple[_Count, ...]) -> None:
        self._limits = limits
        self._account = account
        self._held = held

    async def succeeded(self) -> None:
        """The right password: the account's failures are forgotten; the address, which counts
        failures only, gets its slot back."""
        if self._account is not None:
            await self._limits.clear(self._account)
        for count in self._held:
            if count is not self._account:
                await self._limits.give_back(count)

    async def abandoned(self) -> None:
        """Neither right nor wrong (an error of ours, such as the database being down): every slot comes back."""
        for count in self._held:
            await self._limits.give_back(count)


class RateLimits:
    """The app's throttles, on `app.state.rate_limits`: built by `from_settings`, closed by the lifespan."""

    def __init__(
        self,
        storage: Storage,
        *,
        login_account: RateLimitItem,
        login_address: RateLimitItem,
        signup_address: RateLimitItem,
        timeout: float,
        enabled: bool = True,
    ) -> None:
        self.storage = storage
        self.enabled = enabled
        self.login_account = login_account
        self.login_address = login_address
        self.signup_address = signup_address
        self._limiter = FixedWindowRateLimiter(storage)
        self._timeout = timeout
        self._outage = _Outage()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        # Disabled, nothing is counted: no Redis client is made either.
        url = settings.rate_limit_storage if settings.rate_limit_enabled else "async+memory://"
        timeout = settings.rate_limit_storage_timeout
        try:
            storage = storage_from_string(
                url,
                key_prefix=settings.rate_limit_key_prefix,
                # Every failure of the client as StorageError, which the throttles fail open on.
                wrap_exceptions=True,
                connect_timeout=timeout,
                stream_timeout=timeout,
            )
        except (ConfigurationError, ValueError) as exc:
            # Some of these messages quote the URL, password and all.
            reason = "cannot parse it as a storage URL" if "://" in str(exc) else str(exc)
            raise ConfigError(f"RATE_LIMIT_STORAGE_URL: {reason}") from None
        assert isinstance(storage, Storage), url  # an async+ scheme makes an async storage
        return cls(
            storage,
            login_account=parse(settings.rate_limit_login_account),
            login_address=parse(settings.rate_limit_login_address),
            signup_address=parse(settings.rate_limit_signup_address),
            timeout=timeout,
            enabled=settings.rate_limit_enabled,
        )

    async def begin_login(self, *, account: str, address: str) -> LoginAttempt:
        """Take a slot of the account's and of the address's failed-login limits, or raise RateLimited.

        `account` is the login's normalised email (or text); it is counted by its SHA-256, so a
        long one is not a long key and the storage holds no emails.
        """
        if not self.enabled:
            return LoginAttempt(self, None, ())
        digest = hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()
        account_count = _Count(self.login_account, ("login-account", digest))
        address_count = _Count(self.login_address, ("login-address", address_key(address)))
        return LoginAttempt(self, account_count, await self._take(account_count, address_count))

    async def count_signup(self, *, address: str) -> None:
        """Count a sign-up attempt from this address -- every one, valid or not -- or raise RateLimited."""
        if self.enabled:
            await self._take(_Count(self.signup_address, ("signup-address", address_key(address))))

    async def _take(self, *counts: _Count) -> tuple[_Count, ...]:
        """A slot of each count, or none of them and RateLimited. A count whose storage failed is let through."""
        held: list[_Count] = []
        for count in counts:
            taken = await self._guard(self._limiter.hit(count.item, *count.identifiers))
            if taken is None:
                continue
            if not taken:
                # The refused attempt counted itself (a fixed window counts, then compares):
                # it is no failure, and neither are the slots this one took before it.
                for slot in (*held, count):
                    await self.give_back(slot)
                raise RateLimited(await self._retry_after(count))
            held.append(count)
        return tuple(held)

    async def give_back(self, count: _Count) -> None:
        await self._guard(self._limiter.hit(count.item, *count.identifiers, cost=-1))

    async def clear(self, count: _Count) -> None:
        await self._guard(self._limiter.clear(count.item, *count.identifiers))

    async def _retry_after(self, count: _Count) -> int:
        """Whole seconds until the count's window ends and frees its slots (at least 1)."""
        stats = await self._guard(self._limiter.get_window_stats(count.item, *count.identifiers))
        if stats is None:
            return 1
        seconds = stats.reset_time - time.time()
        if seconds <= 0 and stats.remaining == 0:
            # Full, yet its window never ends: a Redis counter whose EXPIRE did not run (it is a
            # second command after INCRBY, and the connection can drop between the two). Left
            # alone, it would refuse this caller for ever.
            logger.warning("rate-limit counter without an expiry, cleared: %s", count.identifiers[0])
            await self.clear(count)
        return max(1, math.ceil(seconds))

    async def _guard(self, operation: Awaitable[T]) -> T | None:
        """The operation's result, or None when the storage failed or did not answer in time."""
        try:
            async with asyncio.timeout(self._timeout):
                result = await operation
        except _STORAGE_FAILURES as exc:
            self._outage.failed(exc)
            return None
        self._outage.ended()
        return result

    async def reset(self) -> None:
        """Forget every count (under this app's key prefix, in Redis)."""
        await self.storage.reset()

    async def close(self) -> None:
        """Close the storage's connections. `limits` has no close of its own: a Redis storage's
        client (and a sentinel's replica client) holds a connection pool; memory holds nothing."""
        bridge = getattr(self.storage, "bridge", None)
        for name in ("storage", "storage_replica"):
            pool = getattr(getattr(bridge, name, None), "connection_pool", None)
            if pool is not None:
                pool.disconnect()


def address_key(address: str) -> str:
    """The caller a per-address limit counts: an IPv6 client by its /64, the block one subscriber
    is given and can take any address of."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ip_network(f"{parsed}/64", strict=False))
    return address


class _Outage:
    """Logs the storage failing -- at once, then every minute while it lasts -- and coming back."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.failed_open = 0
        self._logged_at = -math.inf

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        self.failed_open += 1
        if now - self._logged_at >= _OUTAGE_LOG_INTERVAL:
            self._logged_at = now
            cause = exc.storage_error if isinstance(exc, StorageError) else exc
            logger.warning(
                "rate-limit storage failing, requests are not throttled: %s: %s (%d calls failed open)",
                type(cause).__name__,
                cause,
                self.failed_open,
            )

    def ended(self) -> None:
        if self.started is not None:
            logger.warning(
                "rate-limit storage answering again after %.0f s (%d calls failed open)",
                time.monotonic() - self.started,
                self.failed_open,
            )
            self.started = None
            self.failed_open = 0
            self._logged_at = -math.inf
