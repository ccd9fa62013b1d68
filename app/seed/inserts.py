"""MariaDB and SQLite: multi-row INSERTs, a transaction per batch of rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.database import transaction
from app.seed.pipeline import made_ahead
from app.seed.progress import Progress, Report
from app.seed.world import CHUNK, Row, Table

# Rows per transaction. Fewer commits write the pages of the indexes being filled fewer times
# over (SQLite: 23k -> 48k rows/s), without shutting writers out for long.
_COMMIT_EVERY = 10 * CHUNK
# Chunks made ahead, per table: these databases take rows more slowly than they are made.
_AHEAD = dict.fromkeys(("users", "posts", "comments"), 4)
_UNIX_EPOCH = datetime(1970, 1, 1)  # naive: MariaDB and SQLite store naive UTC

Insert = Callable[[list[Row]], Awaitable[None]]


async def load_by_inserts(engine: AsyncEngine, tables: list[Table], *, report: Report | None) -> None:
    """`tables`, each committed every _COMMIT_EVERY rows and at its end."""
    mariadb = engine.dialect.name in ("mysql", "mariadb")
    inserting = _mariadb_inserts if mariadb else _sqlite_inserts
    async with made_ahead(tables, _with_timestamps, chunks=_AHEAD) as feeds:
        for table, feed in zip(tables, feeds, strict=True):
            progress = Progress(table.name, table.rows, report)
            columns, markers = ", ".join(table.columns), ", ".join(["?"] * len(table.columns))
            statement = f"INSERT INTO {table.name} ({columns}) VALUES ({markers})"  # noqa: S608 -- fixed names
            chunk = await anext(feed, None)
            while chunk is not None:
                batch_end = progress.done + _COMMIT_EVERY
                async with transaction(engine) as connection, inserting(connection, statement) as insert:
                    while chunk is not None and progress.done < batch_end:
                        rows, values = chunk
                        await insert(values)
                        progress.advance(rows)
                        chunk = await anext(feed, None)
            if not table.rows:
                progress.advance(0)


def _with_timestamps(_table: Table, rows: list[Row]) -> list[Row]:
    """Timestamps as naive UTC text, always with six digits of fraction: what SQLAlchemy's
    UTCDateTime writes on SQLite (where they sort as text), and what MariaDB parses into
    DATETIME(6) -- cheaper than asyncmy's own formatting of datetime objects."""
    out: list[Row] = []
    for row in rows:
        at = (_UNIX_EPOCH + timedelta(microseconds=row[-1])).isoformat(" ", "microseconds")
        out.append((*row[:-1], at, at))
    return out


@asynccontextmanager
async def _mariadb_inserts(connection: AsyncConnection, statement: str) -> AsyncIterator[Insert]:
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    # MariaDB binds a whole chunk in one COM_STMT_BULK_EXECUTE (binary protocol, no escaping:
    # asyncmy's executemany spent most of its time escaping values to text).
    prepared = await raw.prepare(statement)

    async def insert(values: list[Row]) -> None:
        try:
            await prepared.execute_bulk(values)
        except ValueError:  # a chunk it cannot bind in bulk (a column all NULL): as text
            async with raw.cursor() as cursor:
                await cursor.executemany(statement.replace("?", "%s"), values)

    yield insert
    # Not when the block failed: the transaction's rollback (or the connection's end, if it is
    # broken) is what matters then, and a failing close would hide the error.
    await prepared.close()


@asynccontextmanager
async def _sqlite_inserts(connection: AsyncConnection, statement: str) -> AsyncIterator[Insert]:
    # SQLite's page cache is 2 MB by default: the indexes being filled (random keys, most of them)
    # then go back and forth to the file for every few rows. A larger one for this unit of work,
    # then the old size back, so the connection goes back to the pool as it came. (The setting is
    # the connection's, not the transaction's: made inside the block to be on the connection the
    # inserts use.)
    cache_size = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    await connection.exec_driver_sql("PRAGMA cache_size = -262144")  # KiB: 256 MB at most

    async def insert(values: list[Row]) -> None:
        # sqlite3's executemany binds the tuples in its C loop, without SQLAlchemy's per-value
        # processing.
        await connection.exec_driver_sql(statement, values)

    try:
        yield insert
    finally:
        await connection.exec_driver_sql(f"PRAGMA cache_size = {int(cache_size)}")
