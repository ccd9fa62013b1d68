"""Requests waiting for a connection get one in the order they asked, and a wait has a bound."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.database import Database
from tests.conftest import make_settings
from tests.databases import ScratchDatabase


async def test_connections_go_to_the_longest_waiting_request(backend: ScratchDatabase) -> None:
    # Many requests, few connections, and each request asks again as soon as it is done -- the
    # pattern under which a newcomer used to take a connection from under a request already waiting.
    database = Database.from_settings(make_settings(backend, db_pool_size=2, db_max_overflow=0))
    tickets = itertools.count()
    granted: list[int] = []

    async def client() -> None:
        for _ in range(15):
            ticket = next(tickets)  # taken as the request asks, before any await
            async with database.autocommit() as connection:
                granted.append(ticket)
                await connection.exec_driver_sql("SELECT 1")

    try:
        # Both connections opened first: how long opening one takes is not what is measured.
        async with database.autocommit(), database.autocommit():
            pass
        await asyncio.gather(*(client() for _ in range(12)))
    finally:
        await database.dispose()
    assert len(granted) == 12 * 15
    # First come, first served: nobody was overtaken.
    assert granted == sorted(granted)


async def test_a_wait_longer_than_the_pool_timeout_fails_fast_and_frees_nothing(backend: ScratchDatabase) -> None:
    database = Database.from_settings(make_settings(backend, db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.2))
    try:
        async with database.autocommit():
            with pytest.raises(PoolTimeout):
                async with database.autocommit():
                    pass  # pragma: no cover -- never entered
        # The failed wait gave back no slot it did not have: one connection, and it is free again.
        async with database.autocommit() as connection:
            assert (await connection.exec_driver_sql("SELECT 1")).scalar_one() == 1
            # ... and still only one: a second request waits, and times out, as the first did.
            with pytest.raises(PoolTimeout):
                async with database.autocommit():
                    pass  # pragma: no cover -- never entered
    finally:
        await database.dispose()


async def test_a_request_cancelled_while_waiting_leaves_the_line_intact(backend: ScratchDatabase) -> None:
    database = Database.from_settings(make_settings(backend, db_pool_size=1, db_max_overflow=0))
    try:
        async with database.autocommit():
            waiting = asyncio.create_task(database.autocommit().__aenter__())
            await asyncio.sleep(0.05)
            waiting.cancel()  # the client went away
            with pytest.raises(asyncio.CancelledError):
                await waiting
        async with database.autocommit() as connection:
            assert (await connection.exec_driver_sql("SELECT 1")).scalar_one() == 1
    finally:
        await database.dispose()
