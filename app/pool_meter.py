"""What the connection pools report about themselves: connections by state, waiters, waits.

The numbers are pushed as they change rather than read at scrape time, because with several
workers the scrape is answered by one of them, which cannot see the others' pools. The pool
reports its connections after every checkout and checkin; waits are reported where the waiting
happens -- in the pool for units of work, in the FIFO gate (`app.pool_gate`) for the autocommit
pool, which the gate keeps from ever waiting itself.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

# SQLAlchemy names a pool's logger after its class, so this pool logs under this module rather
# than under `sqlalchemy`, which SQLAlchemy keeps at WARNING unless asked: so is this one.
logging.getLogger(__name__).setLevel(logging.WARNING)


class PoolMeter:
    """Where a pool's numbers go; this one drops them (metrics off)."""

    def waiting(self, delta: int) -> None:
        """One more (+1) or one fewer (-1) request waits for a connection."""

    def waited(self, seconds: float) -> None:
        """A connection was handed out after `seconds`."""

    def connections(self, *, in_use: int, idle: int, overflow: int) -> None:
        """The pool's open connections now: in use within its size, in use beyond it, idle."""


NO_METER = PoolMeter()


class MeteredQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, reporting to its `meter` (set once the engine exists)."""

    meter: PoolMeter = NO_METER
    # False where something in front of the pool (the gate) does the waiting and reports it.
    meters_waits: bool = True

    def _do_get(self) -> ConnectionPoolEntry:
        if not self.meters_waits:
            record = super()._do_get()
        else:
            meter, started = self.meter, time.perf_counter()
            waits = self.checkedin() == 0 and self.checkedout() >= self.size() + max(self._max_overflow, 0)
            if waits:
                meter.waiting(1)
            try:
                record = super()._do_get()
            finally:
                if waits:
                    meter.waiting(-1)
            meter.waited(time.perf_counter() - started)
        self._report()
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        super()._do_return_conn(record)
        self._report()

    def _report(self) -> None:
        idle, in_use = self.checkedin(), self.checkedout()
        # Connections beyond the pool's size are always checked out: one that comes back to a
        # full pool is closed.
        overflow = max(0, idle + in_use - self.size())
        self.meter.connections(in_use=in_use - overflow, idle=idle, overflow=overflow)

    def recreate(self) -> MeteredQueuePool:
        # engine.dispose() replaces the pool with a copy: the copy keeps reporting to the same place.
        pool = super().recreate()
        assert isinstance(pool, MeteredQueuePool)
        pool.meter, pool.meters_waits = self.meter, self.meters_waits
        return pool
