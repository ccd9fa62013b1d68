"""Rows made on a worker thread, ahead of the database.

Generating a chunk of rows, and converting it for the database, is Python work; storing it is
mostly the database's. With the generator on a worker thread the event loop feeds the database
the chunks already made meanwhile, so the two overlap instead of taking turns, and the generator
keeps going while the database rebuilds a table's indexes.

Each table's chunks go through an anyio memory object stream of their own, of as many places as
the caller gives that table: the worker waits for room, so what is held stays bounded whatever
the row count -- at most the stream of the table being stored and the next one's, as the worker
starts on a table only once the one before is all sent. A chunk the worker fails to make raises
its error where that chunk would have come; an error in the block stops the worker, and comes out
of the block as it went in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeAlias, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from app.seed.world import Row, Table

T = TypeVar("T")
Chunk: TypeAlias = tuple[int, T]
"""A chunk as the database takes it, after the number of rows in it."""


@asynccontextmanager
async def made_ahead(
    tables: Sequence[Table], convert: Callable[[Table, list[Row]], T], *, chunks: Mapping[str, int]
) -> AsyncIterator[list[Feed[T]]]:
    """Each table's chunks, `convert`ed on a worker thread up to `chunks[table.name]` ahead of the block."""
    streams = [anyio.create_memory_object_stream[Chunk[T]](chunks[table.name]) for table in tables]
    worker = _Worker(tables, convert, [send for send, _ in streams])
    failed: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, worker.run)
        try:
            yield [Feed(receive, worker, table) for table, (_, receive) in enumerate(streams)]
        except Exception as exc:  # noqa: BLE001 -- re-raised below as it is, not wrapped in the group's ExceptionGroup
            failed = exc
        finally:
            # A worker waiting for room stops at once; one still generating, at its next chunk.
            for _, receive in streams:
                receive.close()
    if failed is not None:
        raise failed


class Feed(Generic[T]):
    """One table's chunks, in order, as the worker makes them."""

    def __init__(self, receive: MemoryObjectReceiveStream[Chunk[T]], worker: _Worker[T], table: int) -> None:
        self._receive, self._worker, self._table = receive, worker, table

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> Chunk[T]:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            # The worker ends a table's stream once it has sent all of it, or when it failed:
            # then this table, if the failure came before its end.
            if self._worker.failure is not None and self._table >= self._worker.tables_sent:
                raise self._worker.failure from None
            raise StopAsyncIteration from None


class _Worker(Generic[T]):
    def __init__(
        self,
        tables: Sequence[Table],
        convert: Callable[[Table, list[Row]], T],
        sends: list[MemoryObjectSendStream[Chunk[T]]],
    ) -> None:
        self._tables, self._convert, self._sends = tables, convert, sends
        self.failure: Exception | None = None
        self.tables_sent = 0

    def run(self) -> None:
        """On the worker thread. The streams belong to the event loop: sending to one, or closing
        it, goes through the loop (from_thread)."""
        try:
            for table, send in zip(self._tables, self._sends, strict=True):
                for rows in table.chunks:
                    anyio.from_thread.run(send.send, (len(rows), self._convert(table, rows)))
                self.tables_sent += 1
                anyio.from_thread.run_sync(send.close)
        except anyio.BrokenResourceError:
            pass  # the block left early (it failed): nobody to make rows for
        except Exception as exc:  # noqa: BLE001 -- raised in the block, where the chunks were awaited
            self.failure = exc
        finally:
            anyio.from_thread.run_sync(self._close)

    def _close(self) -> None:
        for send in self._sends:
            send.close()
