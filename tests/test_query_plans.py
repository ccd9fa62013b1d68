"""The list endpoints' own statements, as PostgreSQL plans them over seeded data: index ranges, no
sequential scan of posts or comments. (Counting, `include=total`, is a scan by nature and opt-in;
a title search, `q`, would need a trigram index.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text

from app.seed import seed

# users is left out: with a few hundred seeded users a hash join over all of them is the cheaper
# plan, and PostgreSQL rightly takes it; at scale the join goes through the primary key.
BIG_TABLES = {"posts", "comments"}


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield plan["Node Type"], plan.get("Relation Name", "")
    for child in plan.get("Plans", []):
        yield from _scans(child)


@pytest.mark.backends("postgresql")
async def test_list_queries_use_indexes_not_sequential_scans(app: FastAPI, client: httpx.AsyncClient) -> None:
    database = app.state.db
    await seed(database.engine, users=300, posts=8_000, comments=16_000, random_seed=3)
    first = (await client.get("/posts?limit=20")).json()
    post_id, author_id = first["items"][0]["id"], first["items"][0]["author_id"]
    deep = (await client.get("/posts?limit=20&skip=4000")).json()["next_cursor"]
    commented = (await client.get(f"/posts/{post_id}/comments?limit=2")).json()
    urls = [
        "/posts?limit=20",
        f"/posts?limit=20&cursor={deep}",
        "/posts?limit=20&skip=1000",
        "/posts?limit=20&order_by=views",
        "/posts?limit=20&order_by=title&order=asc",
        f"/posts?limit=20&author_id={author_id}",
        f"/users/{author_id}/posts?limit=20",
        f"/posts/{post_id}",
        f"/posts/{post_id}/comments",
        "/users?include=posts&limit=20",
        f"/users/{author_id}",
    ]
    if commented["next_cursor"]:
        urls.append(f"/posts/{post_id}/comments?limit=2&cursor={commented['next_cursor']}")

    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    engines = [database.engine.sync_engine, database.autocommit_engine.sync_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        for url in urls:
            response = await client.get(url)
            assert response.status_code == 200, (url, response.text)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)

    selects = [(sql, params) for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]
    assert len(selects) >= len(urls)
    async with database.autocommit_engine.connect() as connection:
        await connection.exec_driver_sql("ANALYZE users, posts, comments")
        for sql, params in selects:
            raw = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params)).scalar_one()
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            sequential = [table for node, table in _scans(plan) if node == "Seq Scan" and table in BIG_TABLES]
            assert not sequential, f"sequential scan of {sequential} in:\n{sql}"
        # The check itself can fail: a query with nothing to narrow it down is planned as a scan.
        raw = (
            await connection.execute(text("EXPLAIN (FORMAT JSON) SELECT * FROM posts WHERE views + 0 = 7"))
        ).scalar_one()
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        assert ("Seq Scan", "posts") in set(_scans(plan))
