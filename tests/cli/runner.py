"""`python -m app ...` in a fresh process, as a user (or a script) runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Settings the suite's own environment may carry that would change what a command does.
_UNSET = ("DATABASE_URL", "MIGRATE_ON_STARTUP", "LOG_FORMAT")


def blogapi(
    *args: str, cwd: Path, database_url: str | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return _python("-m", "app", *args, cwd=cwd, database_url=database_url, stdin=stdin, **env)


def blogapi_python(code: str, *, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Python `code` in a fresh interpreter with the suite's environment, as `blogapi` gets it."""
    return _python("-c", code, cwd=cwd, database_url=None, stdin=None, **env)


def _python(
    *args: str, cwd: Path, database_url: str | None, stdin: str | None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in _UNSET} | env
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    return subprocess.run(  # noqa: S603 -- our own interpreter and arguments
        [sys.executable, *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def one_line_failure(result: subprocess.CompletedProcess[str], *, code: int = 1) -> str:
    """The failure's single stderr line, after checking it is one line, no traceback, nothing on stdout."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()
