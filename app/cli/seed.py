"""`blogapi seed`: sample data, with a progress bar per table."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from sqlalchemy import text

from app.cli.common import err, fail, out, require_migrated, sqlite_file_missing
from app.config import Settings, get_settings
from app.engines import create_migrations_engine
from app.migrations import MigrationRefused, database_revision
from app.seed import SEED_PASSWORD

# Bulk loads are not requests: a batch may take longer than DB_COMMAND_TIMEOUT allows one.
SEED_STATEMENT_TIMEOUT = 3600.0


def register(cli: typer.Typer) -> None:
    cli.command(
        "seed", help=f"Add sample data to the migrated database. Every seeded user's password: {SEED_PASSWORD!r}."
    )(seed)


def seed(
    users: Annotated[int, typer.Option(min=0, help="Users to add.")] = 1000,
    posts: Annotated[int, typer.Option(min=0, help="Posts to add, by old and new users.")] = 10_000,
    comments: Annotated[int, typer.Option(min=0, help="Comments to add, on this run's posts.")] = 20_000,
    random_seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data.")] = 1,
) -> None:
    settings = get_settings()
    if sqlite_file_missing(settings.async_database_url):
        # Checked before connecting, which would leave an empty file behind.
        require_migrated(settings.async_database_url, None)
    asyncio.run(_seed(settings, users=users, posts=posts, comments=comments, random_seed=random_seed))


async def _seed(settings: Settings, *, users: int, posts: int, comments: int, random_seed: int) -> None:
    from app.seed import seed  # noqa: PLC0415 -- the seed code loads for this command only

    try:
        engine = create_migrations_engine(
            settings.model_copy(update={"db_command_timeout": SEED_STATEMENT_TIMEOUT}),
            why="a bulk load would hold one of PgBouncer's few server connections for minutes",
        )
    except MigrationRefused as exc:
        fail(f"seed refused: {exc}")
    try:
        require_migrated(engine.url, await database_revision(engine))
        with _Bars() as bars:
            try:
                report = await seed(
                    engine, users=users, posts=posts, comments=comments, random_seed=random_seed, report=bars.advance
                )
            except ValueError as exc:  # counts that do not fit together: posts without users
                fail(f"seed refused: {exc}")
        async with engine.connect() as connection:
            sample = await connection.scalar(text("SELECT email FROM users ORDER BY id DESC LIMIT 1"))
    finally:
        await engine.dispose()
    out.print(
        f"seeded {report.users:,} users, {report.posts:,} posts, {report.comments:,} comments "
        f"in {report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s); password: {SEED_PASSWORD!r}",
        markup=False,
    )
    if users and sample:
        out.print(f"sign in as any seeded user, e.g. {sample}", markup=False)


class _RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        # Over the whole load so far: rich's own speed needs a run of samples a small load never gives.
        elapsed = task.finished_time or task.elapsed
        return Text(f"{task.completed / elapsed:,.0f} rows/s" if elapsed else "")


class _Bars:
    """One bar per table, on stderr, created when its first rows arrive."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            _RowsPerSecond(),
            TimeRemainingColumn(),
            console=err,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *_: object) -> None:
        if self._tasks:
            self._progress.stop()

    def advance(self, table: str, rows: int, total: int) -> None:
        if not self._tasks:
            # Started with the first rows: a run refused before any leaves stderr to its message.
            self._progress.start()
        if table not in self._tasks:
            self._tasks[table] = self._progress.add_task(table, total=total)
        self._progress.advance(self._tasks[table], rows)
