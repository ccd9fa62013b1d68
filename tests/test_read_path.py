"""Reads skip the transaction round trips on PostgreSQL; writes keep their transaction everywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.conftest import Account, insert_posts


@asynccontextmanager
async def driver_transaction_states(app: FastAPI) -> AsyncIterator[list[bool]]:
    """Whether the driver connection was inside a transaction after each statement run meanwhile
    (the driver begins one lazily, as the first statement of a unit of work is sent)."""
    states: list[bool] = []

    def record(conn: Any, *_: Any) -> None:
        states.append(conn.connection.driver_connection.is_in_transaction())

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", record)
    try:
        yield states
    finally:
        event.remove(engine, "after_cursor_execute", record)


@pytest.mark.backends("postgresql")
async def test_reads_run_outside_a_transaction_and_writes_inside_one(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, session_factory: Any
) -> None:
    post_id = (await insert_posts(session_factory, alice.id, 3))[0]
    async with driver_transaction_states(app) as reads:
        for path in ["/posts?include=total", f"/users/{alice.id}", f"/posts/{post_id}/comments", "/users/me"]:
            response = await client.get(path, headers=alice.headers)
            assert response.status_code == 200, response.text
    # No BEGIN and no COMMIT: every statement of a GET ran in autocommit.
    assert len(reads) >= 5
    assert not any(reads)

    async with driver_transaction_states(app) as writes:
        response = await client.post("/posts", json={"title": "T", "content": "C"}, headers=alice.headers)
        assert response.status_code == 201
        assert (await client.post(f"/posts/{post_id}/views")).status_code == 200
    # The caller's lookup and the INSERT of one request share one transaction, as does the UPDATE.
    assert writes
    assert all(writes)
