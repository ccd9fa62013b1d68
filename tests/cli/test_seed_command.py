"""`blogapi seed` as a user runs it: refused on an unmigrated database, a bar per table otherwise."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.seed import SEED_PASSWORD
from tests.cli.runner import blogapi, one_line_failure
from tests.databases import ScratchDatabase, create_database, drop_database

pytestmark = pytest.mark.migrations


@pytest.fixture
def scratch(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    database = create_database(backend.backend)
    yield database
    drop_database(database)


def test_seed_refuses_an_unmigrated_database(scratch: ScratchDatabase, tmp_path: Path) -> None:
    line = one_line_failure(blogapi("seed", cwd=tmp_path, database_url=scratch.url_string))
    assert re.fullmatch(r"the database \S+ is not migrated: run `blogapi db upgrade` first", line), line
    if scratch.server == "sqlite":
        # Checked before connecting: no empty file is left where the database should be.
        assert not Path(scratch.url.database or "").exists()


def test_seed_draws_a_bar_per_table_and_names_an_account(scratch: ScratchDatabase, tmp_path: Path) -> None:
    assert blogapi("db", "upgrade", cwd=tmp_path, database_url=scratch.url_string).returncode == 0
    counts = ["--users", "30", "--posts", "120", "--comments", "90"]
    result = blogapi("seed", *counts, cwd=tmp_path, database_url=scratch.url_string, COLUMNS="120")
    assert result.returncode == 0, result.stderr
    summary, account = result.stdout.splitlines()
    assert summary.startswith("seeded 30 users, 120 posts, 90 comments in ")
    assert summary.endswith(f"password: {SEED_PASSWORD!r}")
    assert re.fullmatch(r"sign in as any seeded user, e\.g\. \S+@\S+", account), account
    # Not a terminal: rich draws each bar once, finished.
    bars = {line.split()[0]: line for line in result.stderr.splitlines() if line.strip()}
    assert set(bars) == {"users", "posts", "comments"}, result.stderr
    for table, total in (("users", 30), ("posts", 120), ("comments", 90)):
        assert "100%" in bars[table], bars[table]
        assert f"{total}/{total}" in bars[table], bars[table]
        assert "rows/s" in bars[table], bars[table]


def test_seed_refuses_counts_that_do_not_fit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert blogapi("db", "upgrade", cwd=tmp_path, database_url=url).returncode == 0
    line = one_line_failure(blogapi("seed", "--users", "0", "--posts", "5", cwd=tmp_path, database_url=url))
    assert line == "seed refused: posts need authors: seed some users too"
    negative = one_line_failure(blogapi("seed", "--users", "-1", cwd=tmp_path, database_url=url), code=2)
    assert negative.startswith("usage error: Invalid value for '--users'"), negative
