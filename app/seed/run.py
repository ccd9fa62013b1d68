"""One run of the seed: what the database holds already, then the rows after it, by the backend's loader."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.database import transaction
from app.security import hash_password
from app.seed import SEED_PASSWORD
from app.seed.inserts import load_by_inserts
from app.seed.postgresql import load_postgresql
from app.seed.progress import Report
from app.seed.world import COMMENT_COLUMNS, POST_COLUMNS, SECOND, USER_COLUMNS, Table, World

_TABLES = ("users", "posts", "comments")


@dataclass(frozen=True, slots=True)
class SeedReport:
    users: int
    posts: int
    comments: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return (self.users + self.posts + self.comments) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class _Held:
    """What the tables hold before the run."""

    counts: dict[str, int]
    next_ids: dict[str, int]
    user_ids: list[int]
    slugs: set[str]


async def seed(
    engine: AsyncEngine, *, users: int, posts: int, comments: int, random_seed: int = 1, report: Report | None = None
) -> SeedReport:
    """Add `users`, `posts` and `comments` rows after whatever the database already holds;
    `report` hears of every chunk loaded."""
    if min(users, posts, comments) < 0:
        raise ValueError("row counts cannot be negative")
    rng = random.Random(random_seed)  # noqa: S311 -- sample data, not secrets
    password_hash = await hash_password(SEED_PASSWORD)  # once: hashing each user would take hours
    now_us = int(datetime.now(UTC).replace(microsecond=0).timestamp()) * SECOND
    counts = {"users": users, "posts": posts, "comments": comments}
    started = time.perf_counter()
    if engine.dialect.name == "postgresql":
        async with transaction(engine) as connection:
            # The one transaction of the whole load. Writers wait from here on; readers only
            # while a table is set aside.
            await connection.execute(text("LOCK TABLE users, posts, comments IN SHARE ROW EXCLUSIVE MODE"))
            held = await _held(connection)
            tables = _tables(rng, counts, held, now_us=now_us, password_hash=password_hash)
            await load_postgresql(connection, tables, held.counts, report=report)
    else:
        async with transaction(engine) as connection:
            held = await _held(connection)
        tables = _tables(rng, counts, held, now_us=now_us, password_hash=password_hash)
        await load_by_inserts(engine, tables, report=report)
    return SeedReport(users, posts, comments, time.perf_counter() - started)


async def _held(connection: AsyncConnection) -> _Held:
    counts, next_ids = {}, {}
    for name in _TABLES:
        query = text(f"SELECT count(*), coalesce(max(id), 0) FROM {name}")  # noqa: S608 -- fixed names
        count, last = (await connection.execute(query)).one()
        counts[name], next_ids[name] = int(count), int(last) + 1
    user_ids = list((await connection.scalars(text("SELECT id FROM users ORDER BY id"))).all())
    slugs = set((await connection.scalars(text("SELECT slug FROM users"))).all())
    return _Held(counts, next_ids, user_ids, slugs)


def _tables(rng: random.Random, counts: dict[str, int], held: _Held, *, now_us: int, password_hash: str) -> list[Table]:
    """The rows to add, each table's made lazily, chunk by chunk, in order: users, posts, comments."""
    if counts["posts"] and not (counts["users"] or held.user_ids):
        raise ValueError("posts need authors: seed some users too")
    if counts["comments"] and not counts["posts"]:
        raise ValueError("comments go on the posts of the same run: seed some posts too")
    world = World(rng, rows=sum(counts.values()), now_us=now_us, existing_users=held.user_ids)
    user_ids, post_ids, comment_ids = (
        range(held.next_ids[name], held.next_ids[name] + counts[name]) for name in _TABLES
    )
    return [
        Table("users", USER_COLUMNS, counts["users"], world.users(user_ids, held.slugs, password_hash)),
        Table("posts", POST_COLUMNS, counts["posts"], world.posts(post_ids)),
        Table("comments", COMMENT_COLUMNS, counts["comments"], world.comments(comment_ids)),
    ]
