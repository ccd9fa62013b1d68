"""`python -m app seed`: deterministic, realistic-looking data at scale, for benchmarks and demos.

Every seeded user signs in with SEED_PASSWORD. Rows are generated from one random seed, so the
same arguments give the same data (timestamps are placed relative to the moment of the run).
Users, posts and comments are numbered in the order they were created, as on a live site, and
every post comes after its author, every comment after its post and its author.

Generation runs on a worker thread, ahead of the database, which takes the rows meanwhile.

PostgreSQL gets binary COPY, all in one transaction that keeps other writers out of the three
tables. A table that gets at least a quarter of its size again has its secondary indexes and
foreign keys set aside for the load and rebuilt after it (a sort per index and a join per key
instead of a B-tree descent per index and a lookup per key for every row), under an exclusive
lock; when all three tables start empty they are truncated first so that COPY can write the
rows frozen and all-visible, which makes rebuilding the foreign keys, ANALYZE and the first
reads after the seed cheaper. MariaDB and SQLite get multi-row INSERTs, committed chunk by chunk.
"""

from __future__ import annotations

import asyncio
import random
import struct
import sys
import threading
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.security import hash_password
from app.users.slugs import SlugAllocator, base_slug, fallback_slug

SEED_PASSWORD = "seeded password"  # noqa: S105 -- documented: every seeded user signs in with it
CHUNK = 5000  # rows generated, and handed to the database, at a time
# MariaDB and SQLite: rows per transaction. Fewer commits write the pages of the indexes being
# filled fewer times over (SQLite: 23k -> 48k rows/s), without shutting writers out for long.
_COMMIT_EVERY = 10 * CHUNK

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

Row = tuple[Any, ...]
# Timestamps travel as integer microseconds since 1970 (UTC) until a backend needs them.
_US = 1_000_000
_YEAR_US = 365 * 86_400 * _US
_UNIX_EPOCH = datetime(1970, 1, 1)  # naive: MariaDB and SQLite store naive UTC


@dataclass(frozen=True, slots=True)
class SeedReport:
    users: int
    posts: int
    comments: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return (self.users + self.posts + self.comments) / self.seconds if self.seconds else 0.0


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


@dataclass(frozen=True, slots=True)
class _Table:
    """One table's share of the run: its rows, chunk by chunk."""

    name: str
    columns: tuple[str, ...]
    rows: int
    chunks: Iterator[list[Row]]
    binary: Callable[[list[Row]], bytes]  # PostgreSQL's COPY format for a chunk


async def seed(
    engine: AsyncEngine, *, users: int, posts: int, comments: int, random_seed: int = 1, quiet: bool = False
) -> SeedReport:
    """Add `users`, `posts` and `comments` rows after whatever the database already holds."""
    if min(users, posts, comments) < 0:
        raise ValueError("row counts cannot be negative")
    rng = random.Random(random_seed)  # noqa: S311 -- sample data, not secrets
    password_hash = await hash_password(SEED_PASSWORD)  # once: hashing each user would take hours
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    async with engine.connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if postgresql:
            # Begins the one transaction of the whole load. Writers wait from here on; readers
            # only while a table is set aside.
            await connection.execute(text("LOCK TABLE users, posts, comments IN SHARE ROW EXCLUSIVE MODE"))
        held, next_id = {}, {}
        for name in ("users", "posts", "comments"):
            query = text(f"SELECT count(*), coalesce(max(id), 0) FROM {name}")  # noqa: S608 -- fixed names
            count, last = (await connection.execute(query)).one()
            held[name], next_id[name] = int(count), int(last) + 1
        existing_users = list((await connection.scalars(text("SELECT id FROM users ORDER BY id"))).all())
        taken = set((await connection.scalars(text("SELECT slug FROM users"))).all())
        if posts and not (users or existing_users):
            raise ValueError("posts need authors: seed some users too")
        if comments and not posts:
            raise ValueError("comments go on the posts of the same run: seed some posts too")

        world = _World(
            rng, rows=users + posts + comments, now_us=int(now.timestamp()) * _US, existing_users=existing_users
        )
        user_ids, post_ids, comment_ids = (
            range(next_id[name], next_id[name] + count)
            for name, count in (("users", users), ("posts", posts), ("comments", comments))
        )
        tables = [
            _Table("users", _USER_COLUMNS, users, world.users(user_ids, taken, password_hash), _users_binary),
            _Table("posts", _POST_COLUMNS, posts, world.posts(post_ids), _posts_binary),
            _Table("comments", _COMMENT_COLUMNS, comments, world.comments(comment_ids), _comments_binary),
        ]
        if postgresql:
            await _load_postgresql(connection, tables, held, quiet=quiet)
        else:
            await connection.commit()
            await _load_by_inserts(connection, tables, quiet=quiet)
    return SeedReport(users, posts, comments, time.perf_counter() - started)


# Each row holds these columns in this order, except that created_at, the last item, stands for
# updated_at too (a seeded row was never edited).
_USER_COLUMNS = tuple("id email name slug password_hash bio is_active is_admin created_at updated_at".split())
_POST_COLUMNS = tuple("id title content views author_id created_at updated_at".split())
_COMMENT_COLUMNS = tuple("id post_id author_id body created_at updated_at".split())


# ---------------------------------------------------------------------------------------------
# Generation


class _Runs:
    """Items joined into one string, `separator` between them, to slice runs of consecutive ones out of."""

    def __init__(self, separator: str, items: list[str]) -> None:
        self.text = separator.join(items)
        self.count = len(items)
        self.gap = len(separator)
        # Where each item starts, and one past the end (where one more would start).
        self.starts = array("q", accumulate(map(self.gap.__add__, map(len, items)), initial=0))

    def run(self, random_: Callable[[], float], shortest: int, longest: int) -> str:
        """`shortest` to `longest` consecutive items from a random place."""
        count = shortest + int(random_() * (longest - shortest + 1))
        at = int(random_() * (self.count - count + 1))
        return self.text[self.starts[at] : self.starts[at + count] - self.gap]


class _Text:
    """Text made once per run from the run's seed, for rows to take slices of.

    Choosing every word of every body with rng.choice (a Python call per word, ~80 words a post)
    was three quarters of the old generator's time. Here every piece of text is one slice of a
    long document made up front: a title a run of words from a random word stream, a comment a
    run of consecutive sentences, a post a run of consecutive paragraphs -- one random() and one
    slice each. The documents grow with the run, to 256k sentences (~40 MB in all): in a run of
    2M comments a body then comes up about twice on average, and small runs start quickly.
    """

    def __init__(self, rng: random.Random, *, rows: int) -> None:
        random_ = rng.random
        size = min(max(rows // 8, 1 << 15), 1 << 18)
        words = rng.choices(_WORDS, k=max(size, 1 << 16))
        self.words = _Runs(" ", words)
        # The same stream with every word capitalised, at the same offsets: titles come from here,
        # and a sentence takes its first word from here. (str.capitalize() on a whole phrase
        # converts every character through the Unicode tables: ~0.8 us, more than a row's rest.)
        self.capitalized = capitalized = " ".join(word.capitalize() for word in words)
        lower, starts, places = self.words.text, self.words.starts, 18 * (len(words) - 19)
        sentences = []
        for _ in range(size):
            draw = int(random_() * places)  # 3-20 words, anywhere
            at, end = draw // 18, draw // 18 + 3 + draw % 18
            sentences.append(f"{capitalized[starts[at] : starts[at + 1]]}{lower[starts[at + 1] : starts[end] - 1]}.")
        self.sentences = _Runs(" ", sentences)
        self.paragraphs = _Runs("\n\n", [self.sentences.run(random_, 1, 3) for _ in range(size // 2)])


class _World:
    """What the generators share: the text, the clock, and who exists when.

    The generators run one after the other (users, posts, comments), each reading the times the
    previous one recorded.
    """

    def __init__(self, rng: random.Random, *, rows: int, now_us: int, existing_users: list[int]) -> None:
        self.random = rng.random
        self.text = _Text(rng, rows=rows)
        self.now_us = now_us
        # Users already in the database count as older than anything seeded.
        self.user_ids = existing_users
        self.older_users = len(existing_users)
        self.user_times = array("q")  # of the seeded users, ascending
        self.post_ids = range(0)
        self.post_times = array("q")  # ascending

    def users(self, ids: range, taken: set[str], password_hash: str) -> Iterator[list[Row]]:
        random_, sentences = self.random, self.text.sentences
        slugs = SlugAllocator(taken)  # first free, as registration numbers them
        # Every name the lists make, with its slug and email local part, worked out once.
        people = [
            (f"{first} {last}", base_slug(f"{first} {last}"), f"{base_slug(first)}.{base_slug(last)}")
            for first in _FIRST
            for last in _LAST
        ]
        self.user_ids = [*self.user_ids, *ids]
        times = self.user_times
        # Signed up over the last three years, one after another (a random moment in each slot).
        start, step = self.now_us - 3 * _YEAR_US, 3 * _YEAR_US / max(len(ids), 1)
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for user_id in chunk:
                name, slug, local = people[int(random_() * len(people))]
                created = start + int((user_id - ids.start + random_()) * step)
                times.append(created)
                rows.append(
                    (
                        user_id,
                        f"{local}.{user_id}@{_DOMAINS[int(random_() * len(_DOMAINS))]}",
                        name,
                        slugs.take(slug or fallback_slug(user_id)),
                        password_hash,
                        sentences.run(random_, 1, 3) if random_() < 0.4 else None,  # bio
                        random_() > 0.02,  # is_active
                        False,  # is_admin
                        created,
                    )
                )
            yield rows

    def posts(self, ids: range) -> Iterator[list[Row]]:
        random_ = self.random
        titles, title_starts, words = self.text.capitalized, self.text.words.starts, self.text.words.count
        paragraphs = self.text.paragraphs
        paragraph_text, paragraph_starts, paragraph_count = paragraphs.text, paragraphs.starts, paragraphs.count
        authors = self.user_ids
        self.post_ids = ids
        times = self.post_times
        # Published over the last two years, one after another, each by a user signed up by then.
        step = 2 * _YEAR_US / max(len(ids), 1)
        origin = self.now_us - 2 * _YEAR_US - ids.start * step  # post_id + random() slots past it
        signups = self._signups()
        eligible, next_signup = next(signups)
        # The hot loop has _Runs.run written out, and draws a length and a place at once: a length
        # of 10 kinds at 1,000 places is one of 10,000.
        title_draws = 10 * (words - 11)  # 3-12 words, anywhere
        body_draws = 6 * (paragraph_count - 5)  # 1-6 paragraphs, anywhere
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for post_id in chunk:
                created = int(origin + (post_id + random_()) * step)
                times.append(created)
                while next_signup <= created:
                    eligible, next_signup = next(signups)
                title = int(random_() * title_draws)
                title_at, title_end = title // 10, title // 10 + 3 + title % 10
                body = int(random_() * body_draws)
                body_at, body_end = body // 6, body // 6 + 1 + body % 6
                rows.append(
                    (
                        post_id,
                        titles[title_starts[title_at] : title_starts[title_end] - 1],
                        paragraph_text[paragraph_starts[body_at] : paragraph_starts[body_end] - 2],
                        # Most posts are read a little, a few a lot: Pareto, alpha 1.2, capped
                        # (its tail would, once in ~10^10 posts, overflow the integer column).
                        min(int(10.0 / (1.0 - random_()) ** (1 / 1.2)) - 10, 10_000_000),
                        authors[int(random_() * eligible)],
                        created,
                    )
                )
            yield rows

    def _signups(self) -> Iterator[tuple[int, float]]:
        """(how many users there are, when the next one signs up), from the start of time on."""
        users = self.older_users
        for signed_up in self.user_times:
            if users:  # before the first user, the first one stands in
                yield users, signed_up
            users += 1
        yield max(users, 1), float("inf")

    def comments(self, ids: range) -> Iterator[list[Row]]:
        if not ids:
            return
        random_ = self.random
        sentences = self.text.sentences
        sentence_text, sentence_starts, sentence_count = sentences.text, sentences.starts, sentences.count
        authors, post_ids, post_times = self.user_ids, self.post_ids, self.post_times
        # Written from the first post until now, one after another, each on a post already out
        # and by a user already signed up -- so older posts gather more comments.
        step = (self.now_us - post_times[0]) / len(ids)
        origin = post_times[0] - ids.start * step
        signups = self._signups()
        eligible, next_signup = next(signups)
        post_times = post_times + array("q", [1 << 62])  # a post that never comes, ends the while below
        published, next_post = 1, post_times[1]
        body_draws = 4 * (sentence_count - 3)  # 1-4 sentences, anywhere: a length and a place in one draw
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for comment_id in chunk:
                created = int(origin + (comment_id + random_()) * step)
                while next_post <= created:
                    published += 1
                    next_post = post_times[published]
                while next_signup <= created:
                    eligible, next_signup = next(signups)
                body = int(random_() * body_draws)
                body_at, body_end = body >> 2, (body >> 2) + 1 + (body & 3)
                rows.append(
                    (
                        comment_id,
                        post_ids[int(random_() * published)],
                        authors[int(random_() * eligible)],
                        sentence_text[sentence_starts[body_at] : sentence_starts[body_end] - 1],
                        created,
                    )
                )
            yield rows


def _ranges(ids: range) -> Iterator[range]:
    for start in range(ids.start, ids.stop, CHUNK):
        yield range(start, min(start + CHUNK, ids.stop))


class _Ahead:
    """Runs the tables' generators, and each chunk's conversion for the database, on a worker
    thread, up to `limit` bytes ahead of the database; the event loop meanwhile feeds the
    database the chunks already made. Generating and storing then overlap instead of taking
    turns, and the generator keeps going while the database rebuilds indexes."""

    _END = object()

    def __init__(self, tables: list[_Table], convert: Callable[[_Table, list[Row]], Any], *, limit: int) -> None:
        self.tables, self.convert, self.limit = tables, convert, limit
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.room = threading.Condition()
        self.buffered = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="seed-generator", daemon=True)

    async def __aenter__(self) -> _Ahead:
        self.thread.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with self.room:
            self.stopping = True
            self.room.notify()
        await asyncio.to_thread(self.thread.join)

    def _run(self) -> None:
        try:
            for table in self.tables:
                for rows in table.chunks:
                    with self.room:
                        self.room.wait_for(lambda: self.stopping or self.buffered < self.limit)
                        if self.stopping:
                            return
                    item = self.convert(table, rows)
                    size = _size(item)
                    with self.room:
                        self.buffered += size
                    self.loop.call_soon_threadsafe(self.queue.put_nowait, (len(rows), size, item))
                self.loop.call_soon_threadsafe(self.queue.put_nowait, self._END)
        except Exception as exc:  # noqa: BLE001 -- handed to the event loop, which raises it
            self.loop.call_soon_threadsafe(self.queue.put_nowait, exc)

    async def chunks(self) -> AsyncIterator[tuple[int, Any]]:
        """The next table's chunks: (rows, converted) pairs."""
        while (item := await self.queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            rows, size, converted = item
            with self.room:
                self.buffered -= size
                self.room.notify()
            yield rows, converted


def _size(item: Any) -> int:
    return len(item) if isinstance(item, bytes) else 1000 * len(item)


# ---------------------------------------------------------------------------------------------
# PostgreSQL: binary COPY
#
# Encoded here rather than by asyncpg's copy_records_to_table, whose per-value encoding (a
# datetime object made and converted for each timestamp) cost about as much as generating the
# row. The format: a header; per row, the field count and each field as its length and bytes
# (int4 big-endian, text as UTF-8, bool as one byte, timestamptz as int8 microseconds since
# 2000-01-01, NULL as length -1); then -1.

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_MESSAGE = 1 << 19  # bytes per CopyData message
_PG_EPOCH_US = 946_684_800 * _US
_LENGTH = struct.Struct(">i").pack
_NULL = _LENGTH(-1)
_USER_HEAD = struct.Struct(">hii").pack  # field count; id
_USER_TAIL = struct.Struct(">ib ib iq iq").pack  # is_active, is_admin, created_at, updated_at
_POST_HEAD = struct.Struct(">hii i").pack  # field count; id; title's length
_POST_TAIL = struct.Struct(">ii ii iq iq").pack  # views, author_id, created_at, updated_at
_COMMENT_HEAD = struct.Struct(">hii ii ii i").pack  # field count; id, post_id, author_id; body's length
_TIMES = struct.Struct(">iq iq").pack  # created_at, updated_at


def _users_binary(rows: list[Row]) -> bytes:
    out: list[bytes] = []
    add = out.append
    for user_id, email, name, slug, password_hash, bio, is_active, is_admin, created in rows:
        add(_USER_HEAD(10, 4, user_id))
        for value in (email, name, slug, password_hash):
            data = value.encode()
            add(_LENGTH(len(data)))
            add(data)
        if bio is None:
            add(_NULL)
        else:
            data = bio.encode()
            add(_LENGTH(len(data)))
            add(data)
        at = created - _PG_EPOCH_US
        add(_USER_TAIL(1, is_active, 1, is_admin, 8, at, 8, at))
    return b"".join(out)


def _posts_binary(rows: list[Row]) -> bytes:
    out: list[bytes] = []
    add = out.append
    for post_id, title, body, views, author_id, created in rows:
        title_data, body_data = title.encode(), body.encode()
        at = created - _PG_EPOCH_US
        add(_POST_HEAD(7, 4, post_id, len(title_data)))
        add(title_data)
        add(_LENGTH(len(body_data)))
        add(body_data)
        add(_POST_TAIL(4, views, 4, author_id, 8, at, 8, at))
    return b"".join(out)


def _comments_binary(rows: list[Row]) -> bytes:
    out: list[bytes] = []
    add = out.append
    for comment_id, post_id, author_id, body, created in rows:
        data = body.encode()
        at = created - _PG_EPOCH_US
        add(_COMMENT_HEAD(6, 4, comment_id, 4, post_id, 4, author_id, len(data)))
        add(data)
        add(_TIMES(8, at, 8, at))
    return b"".join(out)


# asyncpg bounds every statement by the app's command timeout, meant for requests; one COPY of
# millions of rows, or an index build over them, legitimately takes longer (as migrations do).
_PG_TIMEOUT = 24 * 3600.0


async def _load_postgresql(
    connection: AsyncConnection, tables: list[_Table], held: dict[str, int], *, quiet: bool
) -> None:
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    assert raw.is_in_transaction()  # the one SQLAlchemy began: all below commits or rolls back as one
    fresh = not any(held.values())
    if fresh:
        # Empty already; truncated in this transaction, they may be written frozen (COPY FREEZE).
        await raw.execute("TRUNCATE users, posts, comments")
    # For the index builds' sorts and the foreign keys' checks; no JIT for these one-off scans.
    await raw.execute("SET LOCAL maintenance_work_mem = '512MB'")
    await raw.execute("SET LOCAL jit = off")
    async with _Ahead(tables, lambda table, rows: table.binary(rows), limit=256 << 20) as ahead:
        for table in tables:
            progress = _Progress(table.name, table.rows, quiet=quiet)
            # Rebuilding costs a pass over the whole table; keeping indexes and keys up costs
            # far more per row added: rebuild when adding a quarter of the table or more.
            rebuild = await _set_aside(raw, table.name) if table.rows and table.rows * 4 >= held[table.name] else []

            async def source(progress: _Progress = progress) -> AsyncIterator[memoryview | bytes]:
                yield _COPY_HEADER
                async for rows, data in ahead.chunks():
                    view = memoryview(data)
                    # In pieces: asyncio's transport (3.11) moves the rest of its buffer after
                    # every send, which for megabytes at once adds up.
                    for at in range(0, len(view), _COPY_MESSAGE):
                        yield view[at : at + _COPY_MESSAGE]
                    progress.advance(rows)
                yield _COPY_TRAILER

            if table.rows:
                await raw.copy_to_table(
                    table.name,
                    source=source(),
                    columns=table.columns,
                    format="binary",
                    freeze=fresh,
                    timeout=_PG_TIMEOUT,
                )
            else:
                async for _ in ahead.chunks():
                    pass
                progress.advance(0)
            for statement in rebuild:
                await raw.execute(statement, timeout=_PG_TIMEOUT)
    for name in ("users", "posts", "comments"):
        # Rows came with their ids: move the sequences past them.
        await raw.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}")  # noqa: S608
    await raw.execute("ANALYZE users, posts, comments", timeout=_PG_TIMEOUT)
    await connection.commit()


async def _set_aside(raw: Any, table: str) -> list[str]:
    """Drop `table`'s foreign keys and its indexes other than the primary key (and any that back a
    constraint); return the statements that put them back exactly as they were."""
    indexes = await raw.fetch(
        """
        SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND i.indisvalid
          AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY c.relname
        """,
        table,
    )
    foreign_keys = await raw.fetch(
        """
        SELECT conname AS name, pg_get_constraintdef(oid) AS definition
        FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname
        """,
        table,
    )
    for index in indexes:
        await raw.execute(f'DROP INDEX "{index["name"]}"')
    for key in foreign_keys:
        await raw.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{key["name"]}"')
    return [index["definition"] for index in indexes] + [
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{key["name"]}" {key["definition"]}' for key in foreign_keys
    ]


# ---------------------------------------------------------------------------------------------
# MariaDB and SQLite: multi-row INSERTs


async def _load_by_inserts(connection: AsyncConnection, tables: list[_Table], *, quiet: bool) -> None:
    dialect = connection.dialect
    marker = "?" if dialect.paramstyle == "qmark" else "%s"

    def convert(table: _Table, rows: list[Row]) -> list[Row]:
        # Timestamps as naive UTC text, always with six digits of fraction: what SQLAlchemy's
        # UTCDateTime writes on SQLite (where they sort as text), and what MariaDB parses into
        # DATETIME(6) -- cheaper than asyncmy's own formatting of datetime objects.
        out = []
        for row in rows:
            at = (_UNIX_EPOCH + timedelta(microseconds=row[-1])).isoformat(" ", "microseconds")
            out.append((*row[:-1], at, at))
        return out

    cache_size = None
    if dialect.name == "sqlite":
        # SQLite's page cache is 2 MB by default: the indexes being filled (random keys, most of
        # them) then go back and forth to the file for every few rows. A larger one while seeding,
        # on this connection only, then the old size back.
        cache_size = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
        await connection.exec_driver_sql("PRAGMA cache_size = -262144")  # KiB: 256 MB at most
    try:
        await _insert_chunks(connection, tables, convert, marker, quiet=quiet)
    finally:
        if cache_size is not None:
            await connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache_size)}")


async def _insert_chunks(
    connection: AsyncConnection,
    tables: list[_Table],
    convert: Callable[[_Table, list[Row]], list[Row]],
    marker: str,
    *,
    quiet: bool,
) -> None:
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    mariadb = connection.dialect.name in ("mysql", "mariadb")
    async with _Ahead(tables, convert, limit=4 * CHUNK * 1000) as ahead:
        for table in tables:
            progress = _Progress(table.name, table.rows, quiet=quiet)
            columns, markers = ", ".join(table.columns), ", ".join([marker] * len(table.columns))
            statement = f"INSERT INTO {table.name} ({columns}) VALUES ({markers})"  # noqa: S608 -- fixed names
            if mariadb:
                # MariaDB binds a whole chunk in one COM_STMT_BULK_EXECUTE (binary protocol, no
                # escaping: asyncmy's executemany spent most of its time escaping values to text).
                prepared = await raw.prepare(statement.replace("%s", "?"))
            async for rows, values in ahead.chunks():
                if mariadb:
                    try:
                        await prepared.execute_bulk(values)
                    except ValueError:  # a chunk it cannot bind in bulk (a column all NULL): as text
                        async with raw.cursor() as cursor:
                            await cursor.executemany(statement, values)
                else:
                    # sqlite3's executemany binds the tuples in its C loop, without SQLAlchemy's
                    # per-value processing.
                    await connection.exec_driver_sql(statement, values)
                progress.advance(rows)
                if progress.done % _COMMIT_EVERY == 0:
                    await (raw.commit() if mariadb else connection.commit())
            if mariadb:
                await prepared.close()
                await raw.commit()
            else:
                await connection.commit()
            if not table.rows:
                progress.advance(0)
