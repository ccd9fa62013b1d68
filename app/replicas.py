"""Read replicas: which one may serve a read, judged by how much of the primary's WAL each has replayed.

A watcher (one task per process, on connections of its own) samples, every `WATCH_INTERVAL`, the
primary's flushed WAL position and each replica's replayed position (`pg_last_wal_replay_lsn()`);
a write answers with the primary's insert position (`pg_current_wal_insert_lsn()`), which is past
its commit record:

- a read that must see a client's write at position P goes to a replica whose last check found P
  replayed. Replay moves forward (a restarted standby is down, and rechecked, before it serves
  again), so the read cannot be older than the write. No replica there: the primary serves it.
- any other read goes to a replica at most `DB_REPLICA_MAX_LAG` seconds behind, reckoned when the
  read is routed: since the latest primary sample the replica had replayed at its last check,
  every commit before that sample is on it.

A replica whose checks fail, or stop (a watcher that fell behind), is down until one succeeds; a
read it fails is retried on the primary (`app.database.Connection`), so a replica going away costs
no request a 503.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.engines import create_autocommit_engine
from app.pool_gate import PoolGate

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 0.2
# How long one check may take: a replica slower than this to say where it is, is not serving well.
CHECK_TIMEOUT = 1.0
# A replica's last good check older than this is no evidence any more: down until the next.
CHECK_EXPIRY = 3 * WATCH_INTERVAL + CHECK_TIMEOUT
# On a standby, what it has replayed; on a server that is not one (a primary listed as a replica),
# what it has written -- it has everything it has.
_POSITION = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END"
)
# After a write: the insert position, which is past the write's commit record even when
# synchronous_commit is off and the commit returned before its record was written out.
_PRIMARY_POSITION = text("SELECT pg_current_wal_insert_lsn()")
# For the lag: what is flushed, all a replica can have been sent. (The insert position can stay
# ahead of it for as long as the primary is idle: the WAL writer leaves a partial page alone.)
_PRIMARY_FLUSHED = text("SELECT pg_current_wal_flush_lsn()")
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")

State = Literal["ok", "lagging", "down"]


def parse_lsn(value: str) -> int:
    """PostgreSQL's `16/B374D848` as a number; ValueError when it is not one."""
    if not _LSN.fullmatch(value.strip()):
        raise ValueError(f"not a WAL position: {value!r}")
    high, low = value.strip().split("/")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def primary_position(connection: AsyncConnection) -> int:
    """Where the primary's WAL is now: at or past every commit made before this call."""
    return _position(await connection.scalar(_PRIMARY_POSITION))


def _position(value: object) -> int:
    # asyncpg decodes pg_lsn as a number already; a driver that does not gives its text.
    return value if isinstance(value, int) else parse_lsn(str(value))


def _lost_connection(error: BaseException) -> bool:
    return isinstance(error, OSError) or (isinstance(error, DBAPIError) and error.connection_invalidated)


def _watch_engine(settings: Settings, url: URL) -> AsyncEngine:
    """One connection, the watcher's own: its checks never queue behind the requests."""
    return create_autocommit_engine(settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0}), url)


@dataclass(slots=True)
class Replica:
    name: str  # its address without a password, for /health/ready and the logs
    gate: PoolGate  # the reads' pool
    engine: AsyncEngine  # that pool's engine
    watch: AsyncEngine  # the watcher's
    replayed: int | None = None  # None: down, or not checked yet
    fresh_as_of: float = -math.inf  # monotonic time of the latest primary sample it had replayed
    checked_at: float = -math.inf  # of its last good check
    problem: str | None = "not checked yet"
    reads: int = 0  # reads given a connection to it, for /health/ready


@dataclass(slots=True)
class Replicas:
    watch: AsyncEngine  # the watcher's connection to the primary
    members: list[Replica]
    max_lag: float
    # (monotonic time, primary position), oldest first, covering a little more than max_lag.
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def from_settings(cls, settings: Settings) -> Replicas | None:
        if not settings.database_replica_urls:
            return None
        slots = settings.db_pool_size + settings.db_max_overflow
        members = []
        for url in settings.async_replica_urls:
            engine = create_autocommit_engine(settings, url)
            gate = PoolGate(engine, slots=slots, timeout=settings.db_pool_timeout)
            members.append(Replica(url.render_as_string(), gate, engine, _watch_engine(settings, url)))
        return cls(_watch_engine(settings, settings.async_database_url), members, settings.db_replica_max_lag)

    def state(self, replica: Replica, now: float | None = None) -> State:
        now = time.monotonic() if now is None else now
        if replica.replayed is None or now - replica.checked_at > CHECK_EXPIRY:
            return "down"
        return "ok" if now - replica.fresh_as_of <= self.max_lag else "lagging"

    def for_read(self, required: int | None) -> Replica | None:
        """A replica for a read that must see position `required` (None: any write older than the
        lag bound), taken in turn among those with a free connection; None: only the primary will do."""
        now = time.monotonic()
        usable = []
        for replica in self.members:
            state = self.state(replica, now)
            if state == "down" or replica.gate.busy or replica.replayed is None:
                continue
            if replica.replayed >= required if required is not None else state == "ok":
                usable.append(replica)
        return usable[next(self._turn) % len(usable)] if usable else None

    def failed(self, replica: Replica, error: BaseException, *, connecting: bool = False) -> None:
        """A read on `replica` failed. One that could not connect, or lost its connection, takes it
        out until a check succeeds; any other failure (a timeout, a recovery conflict, a full pool)
        is the read's alone."""
        if isinstance(error, PoolTimeout) or not (connecting or _lost_connection(error)):
            return
        name = type(error).__name__
        if replica.replayed is not None:
            logger.warning("replica %s failed, reads go to the primary", replica.name, extra={"error": name})
        replica.replayed, replica.problem = None, f"failed a read: {name}"

    async def keep_watching(self, interval: float = WATCH_INTERVAL) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                logger.exception("checking the replicas failed")
            await asyncio.sleep(interval)

    async def check(self) -> None:
        """One sample of the primary, then of every replica."""
        now = time.monotonic()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self.watch.connect() as connection:
                self._samples.append((now, _position(await connection.scalar(_PRIMARY_FLUSHED))))
        except (SQLAlchemyError, OSError, TimeoutError):
            pass  # the primary's own outage is the requests' to report; the lags only grow meanwhile
        while len(self._samples) > 1 and self._samples[1][0] < now - self.max_lag - 1:
            self._samples.popleft()
        await asyncio.gather(*(self._check(replica, now) for replica in self.members))

    async def _check(self, replica: Replica, now: float) -> None:
        was = self.state(replica, now)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), replica.watch.connect() as connection:
                replayed = await connection.scalar(_POSITION)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            replica.replayed, replica.problem = None, f"unreachable: {type(exc).__name__}"
        else:
            if replayed is None:  # a standby still starting: it has replayed nothing yet
                replica.replayed, replica.problem = None, "has replayed nothing yet"
            else:
                replica.replayed, replica.problem, replica.checked_at = _position(replayed), None, now
                replica.fresh_as_of = self._fresh_as_of(replica.replayed)
        if (state := self.state(replica, now)) != was:
            logger.info("replica %s is %s", replica.name, state, extra={"problem": replica.problem})

    def _fresh_as_of(self, replayed: int) -> float:
        """When the primary was last sampled at a position the replica has replayed."""
        for taken, position in reversed(self._samples):
            if position <= replayed:
                return taken
        return -math.inf

    def report(self) -> list[dict[str, object]]:
        now = time.monotonic()
        return [
            {
                "name": replica.name,
                "state": self.state(replica, now),
                "lag_seconds": round(now - replica.fresh_as_of, 3) if math.isfinite(replica.fresh_as_of) else None,
                "detail": replica.problem,
                "reads": replica.reads,
            }
            for replica in self.members
        ]

    async def dispose(self) -> None:
        await self.watch.dispose()
        for replica in self.members:
            await replica.engine.dispose()
            await replica.watch.dispose()
