"""Read replicas: which one may serve a read, judged by how much of the primary's WAL each has replayed.

A watcher (one task per process) samples, every `WATCH_INTERVAL`, the primary's flushed WAL
position and each replica's replayed position (`pg_last_wal_replay_lsn()`); a write answers with
the primary's insert position (`pg_current_wal_insert_lsn()`), past its commit record:

- a read that must see a client's write at position P goes to a replica whose last sample had
  replayed P. Replay only moves forward, so what was true at the sample is still true: the
  read cannot be older than the write. No replica there: the primary serves it.
- any other read goes to a replica at most `DB_REPLICA_MAX_LAG` seconds behind. Its lag is how
  long ago the primary was last sampled at a position the replica has replayed: every commit
  before that sample is on the replica.

A replica that fails a check is down until a check succeeds; a read it fails is retried on the
primary (`app.database.Connection`), so a replica going away costs no request a 503.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.engines import create_autocommit_engine
from app.pool_gate import PoolGate

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 0.2
# How long one check may take: a replica slower than this to say where it is, is not serving well.
CHECK_TIMEOUT = 1.0
# On a standby, what it has replayed; on a server that is not one (a primary listed as a replica,
# or a standby promoted), what it has written -- it has everything it has.
_POSITION = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END"
)
# After a write: the insert position, which is past the write's commit record even when
# synchronous_commit is off and the commit returned before its record was written out.
_PRIMARY_POSITION = text("SELECT pg_current_wal_insert_lsn()")
# For the lag: what is flushed, all a replica can have been sent. (The insert position can stay
# ahead of it for as long as the primary is idle: the WAL writer leaves a partial page alone.)
_PRIMARY_FLUSHED = text("SELECT pg_current_wal_flush_lsn()")

State = Literal["ok", "lagging", "down"]


def parse_lsn(value: str) -> int:
    """PostgreSQL's `16/B374D848` as a number; ValueError when it is not one."""
    high, slash, low = value.strip().partition("/")
    if not slash or not (0 < len(high) <= 8 and 0 < len(low) <= 8):
        raise ValueError(f"not a WAL position: {value!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def primary_position(connection: AsyncConnection) -> int:
    """Where the primary's WAL is now: at or past every commit made before this call."""
    return _position(await connection.scalar(_PRIMARY_POSITION))


def _position(value: object) -> int:
    # asyncpg decodes pg_lsn as a number already; a driver that does not gives its text.
    return value if isinstance(value, int) else parse_lsn(str(value))


@dataclass(slots=True)
class Replica:
    name: str  # its address without a password, for /health/ready and the logs
    engine: AsyncEngine
    gate: PoolGate
    replayed: int | None = None  # None: down, or not checked yet
    lag: float = math.inf
    problem: str | None = "not checked yet"
    reads: int = 0  # reads it has served (attempted), for /health/ready


@dataclass(slots=True)
class Replicas:
    primary: AsyncEngine  # the watcher's way to the primary: not in line with the requests
    members: list[Replica]
    max_lag: float
    # (monotonic time, primary position), oldest first, covering a little more than max_lag.
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def from_settings(cls, settings: Settings, primary: AsyncEngine) -> Replicas | None:
        if not settings.database_replica_urls:
            return None
        slots = settings.db_pool_size + settings.db_max_overflow
        members = []
        for url in settings.async_replica_urls:
            engine = create_autocommit_engine(settings, url)
            members.append(
                Replica(url.render_as_string(), engine, PoolGate(engine, slots=slots, timeout=settings.db_pool_timeout))
            )
        return cls(primary, members, settings.db_replica_max_lag)

    def state(self, replica: Replica) -> State:
        if replica.replayed is None:
            return "down"
        return "ok" if replica.lag <= self.max_lag else "lagging"

    def for_read(self, required: int | None) -> Replica | None:
        """A replica for a read that must see position `required` (None: any write older than the
        lag bound), taken in turn; None when only the primary will do."""
        usable = [
            replica
            for replica in self.members
            if replica.replayed is not None
            and (replica.replayed >= required if required is not None else replica.lag <= self.max_lag)
        ]
        if not usable:
            return None
        chosen = usable[next(self._turn) % len(usable)]
        chosen.reads += 1
        return chosen

    def failed(self, replica: Replica, error: BaseException) -> None:
        """A read on `replica` failed for want of the server: no more reads until a check succeeds."""
        if replica.replayed is not None:
            logger.warning(
                "replica %s failed a read, reads go to the primary", replica.name, extra={"error": type(error).__name__}
            )
        replica.replayed, replica.lag, replica.problem = None, math.inf, type(error).__name__

    async def keep_watching(self, interval: float = WATCH_INTERVAL) -> None:
        while True:
            await self.check()
            await asyncio.sleep(interval)

    async def check(self) -> None:
        """One sample of the primary, then of every replica."""
        now = time.monotonic()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self.primary.connect() as connection:
                self._samples.append((now, _position(await connection.scalar(_PRIMARY_FLUSHED))))
        except (SQLAlchemyError, OSError, TimeoutError):
            pass  # the primary's own outage is the requests' to report; the lags only grow meanwhile
        while len(self._samples) > 1 and self._samples[1][0] < now - self.max_lag - 1:
            self._samples.popleft()
        await asyncio.gather(*(self._check(replica, now) for replica in self.members))

    async def _check(self, replica: Replica, now: float) -> None:
        was = self.state(replica)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), replica.engine.connect() as connection:
                replayed = await connection.scalar(_POSITION)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            replica.replayed, replica.lag, replica.problem = None, math.inf, f"unreachable: {type(exc).__name__}"
        else:
            if replayed is None:  # a standby still starting: it has replayed nothing yet
                replica.replayed, replica.lag, replica.problem = None, math.inf, "has replayed nothing yet"
            else:
                replica.replayed, replica.problem = _position(replayed), None
                replica.lag = self._lag(replica.replayed, now)
        if (state := self.state(replica)) != was:
            logger.info("replica %s is %s", replica.name, state, extra={"problem": replica.problem})

    def _lag(self, replayed: int, now: float) -> float:
        """Seconds since the latest primary sample the replica has replayed; infinite if none."""
        for taken, position in reversed(self._samples):
            if position <= replayed:
                return now - taken
        return math.inf

    def report(self) -> list[dict[str, object]]:
        return [
            {
                "name": replica.name,
                "state": self.state(replica),
                "lag_seconds": None if math.isinf(replica.lag) else round(replica.lag, 3),
                "detail": replica.problem,
                "reads": replica.reads,
            }
            for replica in self.members
        ]

    async def dispose(self) -> None:
        for replica in self.members:
            await replica.engine.dispose()
