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
    target: str  # module:attribute, the ASGI app or (factory) the function that builds it
    description: str
    checkout: Path = ROOT  # the server's working directory and first PYTHONPATH entry
    factory: bool = False
    env: tuple[tuple[str, str], ...] = ()  # variables of this app alone (a --variant's), over the shared ones

    @property
    def module(self) -> str:
        return self.target.split(":", 1)[0]


def checkout_app(name: str, checkout: Path, description: str) -> AppUnderTest:
    """This project's app from `checkout`, with the process-level tuning its code applies.

    A checkout with app/serving.py builds the served app with `served_app()`, which adds that
    tuning (the garbage collector's) to `create_app()`; older checkouts did it inside create_app,
    so their module-level `app.main:app` is the same thing served.
    """
    if (checkout / "app" / "serving.py").is_file():
        return AppUnderTest(name, "app.serving:served_app", description, checkout, factory=True)
    return AppUnderTest(name, "app.main:app", description, checkout)


APPS = {
    "app": checkout_app("app", ROOT, "this project: FastAPI + SQLAlchemy AsyncSession"),
    "baseline": AppUnderTest("baseline", "bench.baseline.fastapi_app:app", "FastAPI + raw asyncpg, hand-written SQL"),
    "starlette": AppUnderTest("starlette", "bench.baseline.starlette_app:app", "bare Starlette + raw asyncpg"),
}


@dataclass(frozen=True, slots=True)
class Running:
    app: AppUnderTest
    base_url: str
    pid: int

    def processes(self) -> list[int]:
        """The server's process and, with several workers, the workers uvicorn started (Linux)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *map(int, children)]

    def rss_mib(self) -> float:
        """Resident memory of the server's processes, from /proc (Linux)."""
        return sum(_rss_mib(pid) for pid in self.processes())

    def cpu_seconds(self) -> float:
        """User + system CPU time the server's processes have used so far (Linux)."""
        return sum(_cpu_seconds(pid) for pid in self.processes())


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_seconds(pid: int) -> float:
    # Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
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
        # The load comes from one address and logs in (and signs up) far more than a person does.
        "RATE_LIMIT_ENABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@contextmanager
def serve(
    app: AppUnderTest,
    *,
    port: int,
    env: dict[str, str],
    log: Path,
    wrapper: tuple[str, ...] = (),
    patience: float = 1.0,
) -> Iterator[Running]:
    """uvicorn, one worker (or WEB_CONCURRENCY's), uvloop and httptools, no access log; stopped on exit.

    `wrapper` runs it (valgrind: bench/instructions.py), `patience` times as slow to start and stop.
    """
    command = [
        *wrapper,
        sys.executable,
        "-m",
        "uvicorn",
        app.target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        # One, unless a --variant asks for more (WEB_CONCURRENCY, as the container takes it).
        dict(app.env).get("WEB_CONCURRENCY", "1"),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        *(["--factory"] if app.factory else []),
    ]
    # The checkout first on the path: `import app` must find its code, not the editable install's
    # (which points at this checkout, and is only consulted after sys.path).
    path = os.pathsep.join(p for p in (str(app.checkout), env.get("PYTHONPATH", "")) if p)
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=app.checkout,
            env={**env, **dict(app.env), "PYTHONPATH": path},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{app.name} ({base_url})", base_url, process, log, timeout=30 * patience)
        yield Running(app, base_url, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15 * patience)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(name: str, base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name}: the server exited ({process.returncode}); see {log}")
        try:
            if httpx.get(f"{base_url}/posts?limit=1", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name}: not ready after {timeout:g} s (GET /posts?limit=1); see {log}")


def loaded_from(server: Running) -> Path:
    """The file the server's target module comes from, as the running process resolves it.

    The interpreter, working directory and environment are read back from /proc (Linux) rather
    than taken from what was asked for, and the module is looked up under exactly those. A ref
    served with this checkout's code would be compared with itself, and nothing else would say so.
    """
    proc = Path(f"/proc/{server.pid}")
    executable = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
    cwd = Path(os.readlink(proc / "cwd"))
    pairs = (item.split("=", 1) for item in (proc / "environ").read_bytes().decode().split("\0") if "=" in item)
    environ = dict(pairs)
    probe = "import importlib.util, sys; print(importlib.util.find_spec(sys.argv[1]).origin)"
    completed = subprocess.run(
        [executable, "-c", probe, server.app.module], cwd=cwd, env=environ, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{server.app.name}: cannot find {server.app.module}: {completed.stderr.strip()}")
    origin = (cwd / completed.stdout.strip()).resolve()
    if cwd != server.app.checkout.resolve() or not origin.is_relative_to(server.app.checkout.resolve()):
        raise SystemExit(
            f"{server.app.name}: {server.app.module} is loaded from {origin} (working directory {cwd}), "
            f"not from {server.app.checkout}"
        )
    return origin
