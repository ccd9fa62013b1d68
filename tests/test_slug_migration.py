"""The slug data migration (0004-0006) on databases that already hold users, posts and comments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.migrations import alembic_config
from app.users.slugs import base_slug, fallback_slug, first_free
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread, run_async

pytestmark = pytest.mark.migrations

BEFORE_SLUGS = "0003"
TRICKY_NAMES = [
    "Alice Smith",
    "alice smith",
    "ALICE SMITH!",
    "José Núñez",
    "Zoë O'Brien",
    "!!!",
    "???",
    "alice-smith-2",
    "Bob 7",
    "Bob",
    "Bob",
]
ORDINARY = 6000  # more than one backfill batch (5000)
USERS = "SELECT id, email, name, password_hash, bio, is_active, is_admin, created_at, updated_at FROM users ORDER BY id"


@pytest.fixture
def database(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    scratch = create_database(backend.backend)
    in_thread(command.upgrade, alembic_config(scratch.url), BEFORE_SLUGS)
    yield scratch
    drop_database(scratch)


def sql(database: ScratchDatabase, statement: str, rows: list[dict[str, Any]] | None = None) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(database.url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), rows or {})
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return run_async(run)


def fill(database: ScratchDatabase) -> None:
    names = TRICKY_NAMES + [f"Member {i}" for i in range(ORDINARY)]
    sql(
        database,
        "INSERT INTO users (email, name, password_hash) VALUES (:email, :name, 'x')",
        [{"email": f"u{i}@example.com", "name": name} for i, name in enumerate(names)],
    )
    sql(database, "INSERT INTO posts (title, content, author_id) SELECT 'T', 'C', id FROM users WHERE id % 10 = 0")
    sql(database, "INSERT INTO comments (post_id, author_id, body) SELECT id, author_id, 'B' FROM posts")


def expected_slugs(users: list[tuple[int, str]]) -> dict[int, str]:
    """The rules, applied in id order with the app's own implementation."""
    taken: set[str] = set()
    slugs = {}
    for user_id, name in users:
        base = base_slug(name) or fallback_slug(user_id)
        slugs[user_id] = first_free(base, taken)
        taken.add(slugs[user_id])
    return slugs


def test_backfill_follows_the_rules_and_downgrade_changes_no_user_data(database: ScratchDatabase) -> None:
    fill(database)
    before = sql(database, USERS)
    in_thread(command.upgrade, alembic_config(database.url), "head")
    rows = sql(database, "SELECT id, name, slug FROM users ORDER BY id")
    slugs = {user_id: slug for user_id, _, slug in rows}
    assert len(set(slugs.values())) == len(rows)
    assert slugs == expected_slugs([(user_id, name) for user_id, name, _ in rows])
    first = rows[0][0]
    assert [slugs[first + i] for i in range(len(TRICKY_NAMES))] == [
        "alice-smith",
        "alice-smith-2",
        "alice-smith-3",
        "jose-nunez",
        "zoe-o-brien",
        f"user-{first + 5}",
        f"user-{first + 6}",
        "alice-smith-2-2",
        "bob-7",
        "bob",
        "bob-2",
    ]
    in_thread(command.downgrade, alembic_config(database.url), BEFORE_SLUGS)
    assert sql(database, USERS) == before


@pytest.mark.backends("sqlite")
def test_rebuilding_users_on_sqlite_keeps_every_post_and_comment(database: ScratchDatabase) -> None:
    fill(database)
    config = alembic_config(database.url)
    in_thread(command.upgrade, config, "0005")
    counts = sql(database, "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM comments)")
    assert counts[0][0] > 0
    in_thread(command.upgrade, config, "0006")  # NOT NULL: batch mode copies and drops `users`
    assert sql(database, "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM comments)") == counts
    triggers = {name for (name,) in sql(database, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert triggers == {"trg_users_delete_posts", "trg_users_delete_comments", "trg_posts_delete_comments"}
    # The rebuilt table still cascades, even for a client that leaves foreign keys off.
    author = sql(database, "SELECT author_id FROM posts LIMIT 1")[0][0]
    sql(database, "DELETE FROM users WHERE id = :id", [{"id": author}])
    assert sql(database, "SELECT count(*) FROM posts WHERE author_id = :id", [{"id": author}]) == [(0,)]


def test_rows_left_without_a_slug_stop_0006_before_it_changes_anything(database: ScratchDatabase) -> None:
    fill(database)
    config = alembic_config(database.url)
    in_thread(command.upgrade, config, "0005")
    # An older release, still writing after the backfill: no slug.
    sql(database, "INSERT INTO users (email, name, password_hash) VALUES ('late@example.com', 'Late Comer', 'x')")
    with pytest.raises(RuntimeError, match="1 users have no slug"):
        in_thread(command.upgrade, config, "head")
    assert sql(database, "SELECT version_num FROM alembic_version") == [("0005",)]
    # The documented way out: backfill again, then finish.
    in_thread(command.downgrade, config, "0004")
    in_thread(command.upgrade, config, "head")
    assert sql(database, "SELECT slug FROM users WHERE email = 'late@example.com'") == [("late-comer",)]
