"""What every command shares: where output goes, one-line failures, the check that a database is migrated."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from rich.console import Console
from sqlalchemy.engine import URL

from app.migrations import head_revision, is_known

# Results go to stdout, where a script may read them; progress and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class CommandFailed(Exception):
    """An expected failure: `app.cli.main` prints the message as one line on stderr and exits 1."""


def fail(message: str) -> NoReturn:
    raise CommandFailed(message)


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def sqlite_file_missing(url: URL) -> bool:
    """A SQLite file that does not exist yet: connecting would create it, empty."""
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:") or "mode=memory" in database
    return url.get_backend_name() == "sqlite" and not in_memory and not Path(database).expanduser().exists()


def require_migrated(url: URL, revision: str | None) -> None:
    """Fail, saying what to run, unless the database at `url` is at this code's head `revision`."""
    head = head_revision()
    if revision is None:
        fail(f"the database {redacted(url)} is not migrated: run `blogapi db upgrade` first")
    if not is_known(revision):
        fail(f"the database is at revision {revision}, which this code does not know: a newer release migrated it")
    if revision != head:
        fail(f"the database is at {revision}, this code needs {head}: run `blogapi db upgrade` first")
