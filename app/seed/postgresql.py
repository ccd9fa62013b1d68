"""PostgreSQL: binary COPY, all in the caller's one transaction.

That transaction keeps other writers out of the three tables. A table that gets at least a
quarter of its size again has its secondary indexes and foreign keys set aside for the load and
rebuilt after it (a sort per index and a join per key instead of a B-tree descent per index and a
lookup per key for every row), under an exclusive lock; when all three tables start empty they
are truncated first so that COPY can write the rows frozen and all-visible, which makes
rebuilding the foreign keys, ANALYZE and the first reads after the seed cheaper.

The rows are encoded here rather than by asyncpg's copy_records_to_table, whose per-value
encoding (a datetime object made and converted for each timestamp) cost about as much as
generating the row. The format: a header; per row, the field count and each field as its length
and bytes (int4 big-endian, text as UTF-8, bool as one byte, timestamptz as int8 microseconds
since 2000-01-01, NULL as length -1); then -1.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.seed.pipeline import Feed, made_ahead
from app.seed.progress import Progress, Report
from app.seed.world import SECOND, Row, Table

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_COPY_MESSAGE = 1 << 19  # bytes per CopyData message
_PG_EPOCH = 946_684_800 * SECOND
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
        at = created - _PG_EPOCH
        add(_USER_TAIL(1, is_active, 1, is_admin, 8, at, 8, at))
    return b"".join(out)


def _posts_binary(rows: list[Row]) -> bytes:
    out: list[bytes] = []
    add = out.append
    for post_id, title, body, views, author_id, created in rows:
        title_data, body_data = title.encode(), body.encode()
        at = created - _PG_EPOCH
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
        at = created - _PG_EPOCH
        add(_COMMENT_HEAD(6, 4, comment_id, 4, post_id, 4, author_id, len(data)))
        add(data)
        add(_TIMES(8, at, 8, at))
    return b"".join(out)


# asyncpg bounds every statement by the app's command timeout, meant for requests; one COPY of
# millions of rows, or an index build over them, legitimately takes longer (as migrations do).
_PG_TIMEOUT = 24 * 3600.0
_ENCODERS: dict[str, Callable[[list[Row]], bytes]] = {
    "users": _users_binary,
    "posts": _posts_binary,
    "comments": _comments_binary,
}
# Chunks made ahead, per table: about 128 MB of each (a chunk is ~1.4 MB of users, ~3.3 MB of
# posts, ~1.25 MB of comments), so at most ~256 MB held, two tables' worth. As deep as that for
# the generator to keep going while the table before is rebuilt: seconds, for a million posts.
_AHEAD = {"users": 90, "posts": 38, "comments": 100}


async def load_postgresql(
    connection: AsyncConnection, tables: list[Table], held: dict[str, int], *, report: Report | None
) -> None:
    """`tables` after the `held` rows each already has, in the transaction `connection` is in."""
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    assert raw.is_in_transaction()  # the caller's: all below commits or rolls back as one
    fresh = not any(held.values())
    if fresh:
        # Empty already; truncated in this transaction, they may be written frozen (COPY FREEZE).
        await raw.execute("TRUNCATE users, posts, comments")
    # For the index builds' sorts and the foreign keys' checks; no JIT for these one-off scans.
    await raw.execute("SET LOCAL maintenance_work_mem = '512MB'")
    await raw.execute("SET LOCAL jit = off")
    async with made_ahead(tables, lambda table, rows: _ENCODERS[table.name](rows), chunks=_AHEAD) as feeds:
        for table, feed in zip(tables, feeds, strict=True):
            progress = Progress(table.name, table.rows, report)
            # Rebuilding costs a pass over the whole table; keeping indexes and keys up costs
            # far more per row added: rebuild when adding a quarter of the table or more.
            rebuild = await _set_aside(raw, table.name) if table.rows and table.rows * 4 >= held[table.name] else []
            if table.rows:
                await raw.copy_to_table(
                    table.name,
                    source=_copy_data(feed, progress),
                    columns=table.columns,
                    format="binary",
                    freeze=fresh,
                    timeout=_PG_TIMEOUT,
                )
            else:
                progress.advance(0)
            for statement in rebuild:
                await raw.execute(statement, timeout=_PG_TIMEOUT)
    for name in ("users", "posts", "comments"):
        # Rows came with their ids: move the sequences past them.
        await raw.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), max(id)) FROM {name}")  # noqa: S608
    await raw.execute("ANALYZE users, posts, comments", timeout=_PG_TIMEOUT)


async def _copy_data(feed: Feed[bytes], progress: Progress) -> AsyncIterator[memoryview | bytes]:
    yield _COPY_HEADER
    async for rows, data in feed:
        view = memoryview(data)
        # In pieces: asyncio's transport (3.11) moves the rest of its buffer after every send,
        # which for megabytes at once adds up.
        for at in range(0, len(view), _COPY_MESSAGE):
            yield view[at : at + _COPY_MESSAGE]
        progress.advance(rows)
    yield _COPY_TRAILER


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
