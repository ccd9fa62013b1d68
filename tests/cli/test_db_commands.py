"""`blogapi db ...` and `blogapi migrate` on every backend, each saying what it did in one line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.migrations import head_revision
from tests.cli.runner import blogapi, blogapi_python, one_line_failure
from tests.databases import ScratchDatabase, create_database, drop_database
from tests.servers import free_port
from tests.test_migrations import tables

pytestmark = pytest.mark.migrations

HEAD = head_revision()


@pytest.fixture
def scratch(backend: ScratchDatabase) -> Iterator[ScratchDatabase]:
    database = create_database(backend.backend)
    yield database
    drop_database(database)


def test_the_db_commands_walk_the_revisions(scratch: ScratchDatabase, tmp_path: Path) -> None:
    def run(*args: str) -> str:
        result = blogapi(*args, cwd=tmp_path, database_url=scratch.url_string)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert run("db", "current") == f"0000: never migrated (head: {HEAD})\n"
    assert run("db", "upgrade", "0005") == "migrated 0000 -> 0005\n"
    assert run("db", "current") == f"0005 (head: {HEAD}; `blogapi db upgrade` brings it there)\n"
    assert run("db", "upgrade") == f"migrated 0005 -> {HEAD}\n"
    assert run("db", "upgrade") == f"already at {HEAD}\n"
    assert run("db", "current") == f"{HEAD} (head)\n"
    assert run("db", "check") == f"ok: the models match the migrations (head {HEAD})\n"
    assert run("db", "downgrade", "0007") == f"migrated {HEAD} -> 0007\n"
    assert run("migrate") == f"migrated 0007 -> {HEAD}\n"
    assert run("db", "downgrade", "base") == f"migrated {HEAD} -> 0000\n"
    assert tables(scratch) <= {"alembic_version"}


def test_check_refuses_a_database_behind_the_code(scratch: ScratchDatabase, tmp_path: Path) -> None:
    assert blogapi("db", "upgrade", "0007", cwd=tmp_path, database_url=scratch.url_string).returncode == 0
    line = one_line_failure(blogapi("db", "check", cwd=tmp_path, database_url=scratch.url_string))
    assert line == "check failed: Target database is not up to date."


def test_history_lists_every_revision_newest_first(tmp_path: Path) -> None:
    result = blogapi("db", "history", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [f"{n:04d}" for n in range(int(HEAD or 0), 0, -1)]
    assert lines[0].endswith("(head)")
    assert lines[-1] == "0001  create users"


def test_revision_takes_the_next_sequential_id(tmp_path: Path) -> None:
    # On a copy of the package: the revision is written next to the migrations it follows.
    copy = tmp_path / "copy"
    shutil.copytree(PROJECT_ROOT / "app", copy / "app", ignore=shutil.ignore_patterns("__pycache__"))
    database = f"sqlite:///{tmp_path / 'x.db'}"
    env = {"PYTHONPATH": str(copy)}
    versions = copy / "app" / "alembic" / "versions"

    refused = blogapi("db", "revision", "-m", "x", "--autogenerate", cwd=copy, database_url=database, **env)
    assert one_line_failure(refused).startswith("autogenerate compares with the database, which is not migrated")
    assert not (tmp_path / "x.db").exists()

    assert blogapi("db", "upgrade", cwd=copy, database_url=database, **env).returncode == 0
    following = f"{int(HEAD or 0) + 1:04d}"
    generated = blogapi("db", "revision", "-m", "Nothing new", "--autogenerate", cwd=copy, database_url=database, **env)
    assert generated.stdout == f"created {versions / f'{following}_nothing_new.py'}\n", generated.stderr
    script = (versions / f"{following}_nothing_new.py").read_text()
    assert f"revision: str = {following!r}" in script
    assert f"down_revision: str | Sequence[str] | None = {HEAD!r}" in script
    # The models match the migrations: autogenerate found nothing to write.
    assert "op." not in script

    after = f"{int(following) + 1:04d}"
    written = blogapi("db", "revision", "-m", "add a column", cwd=copy, database_url=database, **env)
    assert written.stdout == f"created {versions / f'{after}_add_a_column.py'}\n", written.stderr
    second = (versions / f"{after}_add_a_column.py").read_text()
    assert f"down_revision: str | Sequence[str] | None = {following!r}" in second


def test_failures_are_one_line(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'x.db'}"
    unknown = one_line_failure(blogapi("db", "upgrade", "nope", cwd=tmp_path, database_url=sqlite))
    assert unknown == "migration refused: Can't locate revision identified by 'nope'"
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    for args in (["db", "current"], ["db", "upgrade"], ["migrate"], ["db", "downgrade", "base"], ["seed"]):
        line = one_line_failure(blogapi(*args, cwd=tmp_path, database_url=unreachable, DB_POOL_TIMEOUT="2"))
        assert "refused" in line.lower() or "connect" in line.lower(), line
    usage = one_line_failure(blogapi("db", "downgrade", cwd=tmp_path), code=2)
    assert usage == "usage error: Missing argument 'revision'. (see --help)"
    setting = one_line_failure(blogapi("db", "current", cwd=tmp_path, DB_POOL_SIZE="0"))
    assert setting.startswith("configuration error: DB_POOL_SIZE")


# Flags (off unless given), --out (stdout unless given) and shell's --command have no default to show.
_NO_DEFAULT = ("--reload", "--autogenerate", "--out", "--admin", "--password-stdin", "--command")


# Every command's `--help`, from one process: a fresh interpreter per command would take a
# minute of start-ups to print help texts.
_ALL_HELP = """
import contextlib, io, json, typer
from app.cli import cli, main

def walk(command, path):
    yield path
    for name, child in sorted(getattr(command, "commands", {}).items()):
        yield from walk(child, [*path, name])

texts = {}
for path in walk(typer.main.get_command(cli), []):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            main([*path, "--help"])
        except SystemExit as exc:
            code = exc.code
    texts[" ".join(path)] = [code, printed.getvalue()]
print(json.dumps(texts))
"""


def test_every_command_has_help_with_its_defaults(tmp_path: Path) -> None:
    result = blogapi_python(_ALL_HELP, cwd=tmp_path, COLUMNS="200")
    assert result.returncode == 0, result.stderr
    texts: dict[str, tuple[int, str]] = json.loads(result.stdout)
    assert {
        "serve", "check-config", "migrate", "seed", "openapi", "shell",
        "db upgrade", "db downgrade", "db current", "db history", "db check", "db revision",
        "users create", "users promote", "users demote", "users deactivate", "users set-password",
    } <= set(texts)  # fmt: skip
    for command, (code, text) in texts.items():
        assert code == 0, command
        assert "Usage: blogapi" in text, command
        # Every option names its default (typer prints `[default: ...]`) or that it is required.
        lines = text.splitlines()
        options = [line for line in lines if line.lstrip("│ *").startswith("--") and "--help" not in line]
        for option in options:
            if not any(name in option for name in _NO_DEFAULT):
                assert "default" in option or "required" in option, (command, option)
