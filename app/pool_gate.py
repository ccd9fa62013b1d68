"""First come, first served for the autocommit pool's connections.

SQLAlchemy's async queue pool is not fair (sqlalchemy/sqlalchemy#7679): a connection that comes
back goes to whichever coroutine asks next, and a coroutine that was already waiting, woken to
find it taken, joins the back of the line again (asyncio.Queue re-queues it). Under sustained
load some requests lose that race over and over. An asyncio.Semaphore hands a released slot to
its longest waiter and lets no newcomer pass one, so with a slot per connection the pool itself
never has a waiter. The measured effect is in the README's Architecture section.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.pool_meter import NO_METER, PoolMeter


class PoolGate:
    """One slot per connection of `engine`'s pool; a wait is bounded by the pool's timeout.

    Past the bound: the pool's own TimeoutError, which the app answers with a 503, as the pool
    itself would have. Waits are reported to `meter` (the pool behind the gate never waits).
    """

    __slots__ = ("_engine", "_slots", "_timeout", "meter")

    def __init__(self, engine: AsyncEngine, *, slots: int, timeout: float) -> None:
        self._engine, self._slots, self._timeout = engine, asyncio.Semaphore(slots), timeout
        self.meter: PoolMeter = NO_METER

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    @property
    def busy(self) -> bool:
        """Every connection is in use: a checkout would wait."""
        return self._slots.locked()

    async def checkout(self) -> AsyncConnection:
        """A connection, started; give it back with `checkin`."""
        meter, started = self.meter, time.perf_counter()
        if self._slots.locked():
            meter.waiting(1)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise PoolTimeout(f"no connection free within {self._timeout:g} s") from None
            finally:
                meter.waiting(-1)
        else:
            await self._slots.acquire()  # free: returns at once, without suspending
        try:
            connection = await self._engine.connect().start()
        except BaseException:
            self._slots.release()
            raise
        meter.waited(time.perf_counter() - started)
        return connection

    async def checkin(self, connection: AsyncConnection) -> None:
        try:
            # Shielded, as AsyncConnection's own exit is: a request cancelled mid-close (the client
            # went away) must still hand its connection back to the pool.
            await asyncio.shield(connection.close())
        finally:
            self._slots.release()
