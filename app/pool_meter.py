"""What the connection pools report about themselves: waiters and waits as they happen, and their
connections by state when asked.

Waits are reported where the waiting happens -- in the pool for units of work, in the FIFO gate
(`app.pool_gate`) for the autocommit pool, which the gate keeps from ever waiting itself. The
connections are read off the pool (`connection_counts`) when metrics are collected: pushing them
at every checkout and checkin cost about 2 % of a read's CPU.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, Pool

# SQLAlchemy names a pool's logger after its class, so this pool logs under this module rather
# than under `sqlalchemy`, which SQLAlchemy keeps at WARNING unless asked: so is this one.
logging.getLogger(__name__).setLevel(logging.WARNING)


class PoolMeter:
    """Where a pool's waits go; this one drops them (metrics off)."""

    def waiting(self, delta: int) -> None:
        """One more (+1) or one fewer (-1) request waits for a connection."""

    def waited(self, seconds: float) -> None:
        """A connection was handed out after `seconds`."""


NO_METER = PoolMeter()


class ConnectionCounts(NamedTuple):
    """A pool's open connections: in use within its size, in use beyond it (overflow), idle."""

    in_use: int
    overflow: int
    idle: int


def connection_counts(pool: Pool) -> ConnectionCounts:
    if not isinstance(pool, AsyncAdaptedQueuePool):
        return ConnectionCounts(0, 0, 0)
    idle, checked_out = pool.checkedin(), pool.checkedout()
    # Connections beyond the pool's size are always checked out: one that comes back to a full
    # pool is closed.
    overflow = max(0, idle + checked_out - pool.size())
    return ConnectionCounts(checked_out - overflow, overflow, idle)


class MeteredQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, reporting its waits to `meter` (set once the engine exists)."""

    meter: PoolMeter = NO_METER

    def _do_get(self) -> ConnectionPoolEntry:
        meter = self.meter
        if meter is NO_METER:
            return super()._do_get()
        started = time.perf_counter()
        waits = self.checkedin() == 0 and self.checkedout() >= self.size() + max(self._max_overflow, 0)
        if waits:
            meter.waiting(1)
        try:
            return super()._do_get()
        finally:
            if waits:
                meter.waiting(-1)
            meter.waited(time.perf_counter() - started)

    def recreate(self) -> MeteredQueuePool:
        # engine.dispose() replaces the pool with a copy: the copy keeps reporting to the same place.
        pool = super().recreate()
        assert isinstance(pool, MeteredQueuePool)
        pool.meter = self.meter
        return pool
