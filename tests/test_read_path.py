"""Reads and one-statement writes skip the transaction round trips on PostgreSQL; other writes keep a transaction."""

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
async def driver_transaction_states(app: FastAPI) -> AsyncIterator[list[tuple[str, bool]]]:
    """For each statement run meanwhile: which engine ran it ("autocommit" or "write"), and whether the
    driver connection was inside a transaction after it (the driver begins one lazily, as the
    first statement of a unit of work is sent)."""
    states: list[tuple[str, bool]] = []
    autocommit_engine = app.state.db.autocommit_engine.sync_engine

    def record(conn: Any, *_: Any) -> None:
        engine = "autocommit" if conn.engine is autocommit_engine else "write"
        states.append((engine, conn.connection.driver_connection.is_in_transaction()))

    engines = [app.state.db.engine.sync_engine, app.state.db.autocommit_engine.sync_engine]
    for engine in engines:
        event.listen(engine, "after_cursor_execute", record)
    try:
        yield states
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", record)


@pytest.mark.backends("postgresql")
async def test_reads_and_one_statement_writes_run_in_autocommit_other_writes_in_a_transaction(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, session_factory: Any
) -> None:
    post_id = (await insert_posts(session_factory, alice.id, 3))[0]
    async with driver_transaction_states(app) as reads:
        for path in ["/posts?include=total", f"/users/{alice.id}", f"/posts/{post_id}/comments", "/users/me"]:
            response = await client.get(path, headers=alice.headers)
            assert response.status_code == 200, response.text
    # No BEGIN and no COMMIT: every statement of a GET ran in autocommit.
    assert len(reads) >= 5
    assert reads == [("autocommit", False)] * len(reads)

    async with driver_transaction_states(app) as single:
        response = await client.post("/posts", json={"title": "T", "content": "C"}, headers=alice.headers)
        assert response.status_code == 201
        assert (await client.post(f"/posts/{post_id}/views")).status_code == 200
    # The token check, the INSERT ... RETURNING and the UPDATE ... RETURNING: one statement each,
    # each atomic on its own.
    assert single == [("autocommit", False)] * 3

    async with driver_transaction_states(app) as unit_of_work:
        response = await client.patch(f"/posts/{post_id}", json={"title": "New"}, headers=alice.headers)
        assert response.status_code == 200, response.text
    # The read-check-update of an edit is one transaction.
    written = [state for engine, state in unit_of_work if engine == "write"]
    assert len(written) >= 2
    assert all(written)
