"""The wheel, installed into a fresh virtualenv outside the checkout, migrates and serves on its own.

Runs once per session, whatever `--db` says (it takes no `backend`), and is never skipped: a
wheel that cannot build or install fails here, under CI=true as anywhere.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT
from app.migrations import SCRIPT_LOCATION, head_revision
from tests.servers import free_port

UV = Path(sys.executable).parent / "uv"
# Settings and paths that would let the checkout (or the suite's venv) leak into the installed app.
_LEAKY = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL", "MIGRATE_ON_STARTUP", "SECRET_KEY"}


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(  # noqa: S603 -- our own tools, arguments built here
        [str(arg) for arg in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    venv: Path
    workdir: Path  # an empty directory, the installed app's working directory

    def env(self, **values: str) -> dict[str, str]:
        return {key: value for key, value in os.environ.items() if key not in _LEAKY} | values

    def python_m(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, *args, **env)

    def run(self, program: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            [str(program), *args],
            cwd=self.workdir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    assert UV.exists(), "uv is a dev dependency: `uv sync` installs it into the venv"
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources, and the
    # checkout is shared with other people's work.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, source / name)
    shutil.copytree(PROJECT_ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run(UV, "build", "--wheel", "--quiet", "--out-dir", root / "dist", source, cwd=root)
    (wheel,) = (root / "dist").glob("blogapi-*.whl")
    # The lock's versions, so the install is the one `uv sync` makes, mostly from uv's cache.
    constraints = root / "constraints.txt"
    export: list[str | Path] = ["export", "--project", PROJECT_ROOT, "--frozen", "--no-dev", "--no-hashes"]
    run(UV, *export, "--no-emit-project", "--quiet", "-o", constraints, cwd=root)
    venv = root / "venv"
    run(UV, "venv", "--quiet", venv, "--python", sys.executable, cwd=root)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, "-c", constraints, wheel, cwd=root)
    workdir = root / "work"
    workdir.mkdir()
    return Installed(wheel, python, venv, workdir)


def test_the_wheel_carries_the_migrations(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    revisions = sorted(SCRIPT_LOCATION.glob("versions/*.py"))
    assert len(revisions) >= 8
    expected = {"app/alembic/env.py", "app/alembic/script.py.mako"}
    expected |= {f"app/alembic/versions/{path.name}" for path in revisions}
    assert expected <= names, sorted(expected - names)
    assert not any("__pycache__" in name for name in names)


def test_the_installed_app_is_imported_from_its_venv(installed: Installed) -> None:
    shown = installed.python_m("-c", "import app, app.migrations as m; print(app.__file__); print(m.SCRIPT_LOCATION)")
    assert shown.returncode == 0, shown.stderr
    module, scripts = (Path(line) for line in shown.stdout.splitlines())
    assert module.is_relative_to(installed.venv), module
    assert scripts.is_relative_to(installed.venv), scripts
    assert (scripts / "env.py").is_file()


def _tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@contextmanager
def serving(installed: Installed, database_url: str, log: Path) -> Iterator[str]:
    """`python -m app serve` from the install, until it answers; its base URL."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(  # noqa: S603
            [str(installed.python), "-m", "app", "serve", "--port", str(port)],
            cwd=installed.workdir,
            env=installed.env(DATABASE_URL=database_url),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            try:
                httpx.get(f"{base}/health/live", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, f"not serving after 60 s:\n{log.read_text()[-3000:]}"
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_installed_app_migrates_and_serves(installed: Installed, tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    url = f"sqlite:///{database}"
    head = head_revision()
    # The console script, from a directory that holds nothing of the project.
    blogapi = installed.venv / "bin" / "blogapi"
    first = installed.run(blogapi, "db", "upgrade", DATABASE_URL=url)
    assert (first.returncode, first.stdout) == (0, f"migrated 0000 -> {head}\n"), first.stderr
    current = installed.run(blogapi, "db", "current", DATABASE_URL=url)
    assert (current.returncode, current.stdout) == (0, f"{head} (head)\n"), current.stderr
    assert {"alembic_version", "users", "posts", "comments"} <= _tables(database)
    again = installed.python_m("-m", "app", "migrate", DATABASE_URL=url)
    assert (again.returncode, again.stdout) == (0, f"already at {head}\n"), again.stderr

    log = tmp_path / "serve.log"
    with serving(installed, url, log) as base:
        ready = httpx.get(f"{base}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["revision"] == ready.json()["expected_revision"] == head
        payload = {"email": "packaged@example.com", "name": "Packaged", "password": "correct horse battery"}
        created = httpx.post(f"{base}/users", json=payload, timeout=10)
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}{created.headers['Location']}", timeout=5).status_code == 200
    assert log.read_text().startswith(f"already at {head}\n")  # serve migrates (here: nothing) first
