#!/usr/bin/env python3
"""Project commands that need nothing but Python 3.11 and pip.

    python3 tasks.py serve    install (into .venv), migrate the database, serve on :8000
    python3 tasks.py test     install, lint, type-check, check the layers, and run the suite on every backend
    python3 tasks.py bench    install, then the side-by-side benchmark (bench/run.py; --help)
    python3 tasks.py setup    install only

Installation is from the lock file (uv.lock) and is a no-op when nothing changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
# The same version the lock file pins, so `uv sync` leaves the installer in place.
UV_VERSION = "0.13.9"


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    completed = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=False)
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def setup() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("creating .venv", flush=True)
        run(sys.executable, "-m", "venv", VENV)
    if not (BIN / "uv").exists():
        run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"uv=={UV_VERSION}")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV), "UV_PYTHON": str(BIN / "python")}
    run(BIN / "uv", "sync", "--frozen", "--quiet", env=env)


def serve(extra: list[str]) -> None:
    setup()
    os.execv(BIN / "python", [str(BIN / "python"), "-m", "app", "serve", *extra])


def test(extra: list[str]) -> None:
    setup()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")
    run(BIN / "lint-imports", "--no-cache")
    databases = [] if any(arg.startswith("--db") for arg in extra) else ["--db", "all"]
    os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *databases, *extra])


def bench(extra: list[str]) -> None:
    setup()
    os.execv(BIN / "python", [str(BIN / "python"), "-m", "bench.run", *extra])


def main() -> None:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "setup":
        setup()
    elif command == "serve":
        serve(extra)
    elif command == "test":
        test(extra)
    elif command == "bench":
        bench(extra)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
