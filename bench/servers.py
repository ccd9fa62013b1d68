"""The apps under test, each served alone by uvicorn with the same settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class AppUnderTest:
    name: str
    target: str  # the ASGI app, module:attribute
    description: str


APPS = {
    "app": AppUnderTest("app", "app.main:app", "this project: FastAPI + SQLAlchemy AsyncSession"),
    "baseline": AppUnderTest("baseline", "bench.baseline.fastapi_app:app", "FastAPI + raw asyncpg, hand-written SQL"),
    "starlette": AppUnderTest("starlette", "bench.baseline.starlette_app:app", "bare Starlette + raw asyncpg"),
}


@dataclass(frozen=True, slots=True)
class Running:
    app: AppUnderTest
    base_url: str
    pid: int

    def rss_mib(self) -> float:
        """Resident memory of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux)."""
        # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_env(database_url: str, secret_key: str, pool_size: int) -> dict[str, str]:
    """One environment for every app: the same database, secret and pool."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret_key,
        "ENVIRONMENT": "production",
        "DB_POOL_SIZE": str(pool_size),
        # Exactly `pool_size` connections in every app: the baseline's asyncpg pool has no overflow.
        "DB_MAX_OVERFLOW": "0",
        "MIGRATE_ON_STARTUP": "false",
        # The bearer token is issued once, before the first run, and a full run takes over an hour:
        # with the default 30 minutes every later POST /posts was a 401 (the 2026-11-25 run).
        "ACCESS_TOKEN_EXPIRE_MINUTES": str(24 * 60),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@contextmanager
def serve(app: AppUnderTest, *, port: int, env: dict[str, str], log: Path) -> Iterator[Running]:
    """uvicorn, one worker, uvloop and httptools, no access log; stopped on exit."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app.target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, log)
        yield Running(app, base_url, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{base_url}: the server exited ({process.returncode}); see {log}")
        try:
            if httpx.get(f"{base_url}/posts?limit=1", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{base_url}: not ready after {timeout:g} s; see {log}")
