"""`python -m app seed`: deterministic, realistic-looking data at scale, for benchmarks and demos.

Every seeded user signs in with SEED_PASSWORD. Rows are generated from one random seed, so the
same arguments give the same data. PostgreSQL is filled through COPY (asyncpg's binary bulk
path); MariaDB and SQLite through large multi-row INSERTs.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.models import Comment, Post, User
from app.security import hash_password
from app.users.slugs import SlugAllocator, base_slug, fallback_slug

SEED_PASSWORD = "seeded password"  # noqa: S105 -- documented: every seeded user signs in with it
CHUNK = 5000

# Word lists as strings: short to read, split once at import.
_FIRST = (
    "Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia Guido Hedy Tim Katherine "
    "José Zoë Søren Björn Aoife Chidi Mei Priya"
).split()
_LAST = (
    "Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra Perlman Lamarr "
    "Berners-Lee Johnson Núñez O'Brien Kierkegaard Okafor Wang Patel"
).split()
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
_WORDS = (
    "database query index cursor page async session pool engine migration schema column table row "
    "lock commit rollback latency throughput python postgres mariadb sqlite alembic fastapi model "
    "join filter order limit offset keyset batch copy vacuum analyze plan scan hash tree"
).split()


@dataclass(frozen=True, slots=True)
class SeedReport:
    users: int
    posts: int
    comments: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return (self.users + self.posts + self.comments) / self.seconds if self.seconds else 0.0


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize()


def _paragraphs(rng: random.Random, count: int) -> str:
    return "\n\n".join(_sentence(rng, rng.randint(8, 40)) + "." for _ in range(count))


class _Progress:
    """One line on stderr, rewritten in place: `posts  421,000/1,000,000`."""

    def __init__(self, label: str, total: int, *, quiet: bool) -> None:
        self.label, self.total, self.done, self.quiet = label, total, 0, quiet

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.quiet or (not sys.stderr.isatty() and self.done < self.total):
            return  # redirected: just the final line per table
        end = "\n" if self.done >= self.total else ""
        print(f"\r{self.label:<9}{self.done:>12,}/{self.total:,}", end=end, file=sys.stderr, flush=True)


async def seed(
    engine: AsyncEngine, *, users: int, posts: int, comments: int, random_seed: int = 1, quiet: bool = False
) -> SeedReport:
    """Add `users`, `posts` and `comments` rows after whatever the database already holds."""
    rng = random.Random(random_seed)  # noqa: S311 -- sample data, not secrets
    password_hash = await hash_password(SEED_PASSWORD)  # once: hashing each user would take hours
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    async with engine.connect() as connection:
        first_user = await _next_id(connection, User.__table__)  # type: ignore[arg-type]
        first_post = await _next_id(connection, Post.__table__)  # type: ignore[arg-type]
        first_comment = await _next_id(connection, Comment.__table__)  # type: ignore[arg-type]
        taken = set((await connection.scalars(select(User.slug))).all())
        await connection.commit()

        user_ids = range(first_user, first_user + users)
        all_user_ids = range(1, first_user + users) if first_user > 1 else user_ids
        await _load(
            connection,
            User.__table__,  # type: ignore[arg-type]
            _users(rng, user_ids, taken, password_hash, now),
            _Progress("users", users, quiet=quiet),
        )
        post_times: dict[int, datetime] = {}
        post_ids = range(first_post, first_post + posts)
        await _load(
            connection,
            Post.__table__,  # type: ignore[arg-type]
            _posts(rng, post_ids, all_user_ids, now, post_times),
            _Progress("posts", posts, quiet=quiet),
        )
        comment_ids = range(first_comment, first_comment + comments)
        await _load(
            connection,
            Comment.__table__,  # type: ignore[arg-type]
            _comments(rng, comment_ids, posts=post_ids, authors=all_user_ids, post_times=post_times, now=now),
            _Progress("comments", comments, quiet=quiet),
        )
        await _after_explicit_ids(connection)
    return SeedReport(users, posts, comments, time.perf_counter() - started)


async def _next_id(connection: AsyncConnection, table: Table) -> int:
    return int(await connection.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1


def _users(
    rng: random.Random, ids: range, taken: set[str], password_hash: str, now: datetime
) -> Iterator[dict[str, Any]]:
    slugs = SlugAllocator(taken)  # first free, as registration numbers them
    for user_id in ids:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        name = f"{first} {last}"
        slug = slugs.take(base_slug(name) or fallback_slug(user_id))
        created = now - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        yield {
            "id": user_id,
            "email": f"{base_slug(first)}.{base_slug(last)}.{user_id}@{rng.choice(_DOMAINS)}",
            "name": name,
            "slug": slug,
            "password_hash": password_hash,
            "bio": _sentence(rng, rng.randint(5, 25)) if rng.random() < 0.4 else None,
            "is_active": rng.random() > 0.02,
            "is_admin": False,
            "created_at": created,
            "updated_at": created,
        }


def _posts(
    rng: random.Random, ids: range, authors: Sequence[int], now: datetime, times: dict[int, datetime]
) -> Iterator[dict[str, Any]]:
    for post_id in ids:
        created = now - timedelta(seconds=rng.randint(0, 2 * 365 * 86400), microseconds=rng.randint(0, 999_999))
        times[post_id] = created
        yield {
            "id": post_id,
            "title": _sentence(rng, rng.randint(3, 12))[:200],
            "content": _paragraphs(rng, rng.randint(1, 6)),
            # Most posts are read a little, a few a lot.
            "views": int(rng.paretovariate(1.2) * 10) - 10,
            "author_id": rng.choice(authors),
            "created_at": created,
            "updated_at": created,
        }


def _comments(
    rng: random.Random,
    ids: range,
    *,
    posts: Sequence[int],
    authors: Sequence[int],
    post_times: dict[int, datetime],
    now: datetime,
) -> Iterator[dict[str, Any]]:
    for comment_id in ids:
        post_id = rng.choice(posts)
        since = max(int((now - post_times[post_id]).total_seconds()), 1)
        created = post_times[post_id] + timedelta(seconds=rng.randint(0, since))
        yield {
            "id": comment_id,
            "post_id": post_id,
            "author_id": rng.choice(authors),
            "body": _sentence(rng, rng.randint(3, 60)) + ".",
            "created_at": created,
            "updated_at": created,
        }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _load(connection: AsyncConnection, table: Table, rows: Iterator[dict[str, Any]], progress: _Progress) -> None:
    copy = await _copier(connection, table)
    for chunk in _chunks(rows):
        await copy(chunk)
        await connection.commit()
        progress.advance(len(chunk))


async def _copier(connection: AsyncConnection, table: Table) -> Callable[[list[dict[str, Any]]], Any]:
    columns = [column.name for column in table.columns]
    if connection.dialect.name == "postgresql":
        # COPY, binary, through asyncpg: the bulk path, several times faster than INSERTs.
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None

        async def copy(chunk: list[dict[str, Any]]) -> None:
            records = [tuple(row[name] for name in columns) for row in chunk]
            await raw.copy_records_to_table(table.name, records=records, columns=columns)

        return copy

    statement = insert(table)

    async def many(chunk: list[dict[str, Any]]) -> None:
        # SQLAlchemy batches these into multi-row INSERTs ("insertmanyvalues").
        await connection.execute(statement, chunk)

    return many


async def _after_explicit_ids(connection: AsyncConnection) -> None:
    """Rows were given their ids: move PostgreSQL's sequences past them (the others follow by themselves)."""
    if connection.dialect.name == "postgresql":
        for table in ("users", "posts", "comments"):
            await connection.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608 -- fixed names
            )
        await connection.execute(text("ANALYZE users, posts, comments"))
        await connection.commit()
