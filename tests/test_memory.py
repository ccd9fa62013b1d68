"""Logins leave a server's memory where it was, whatever else runs in threads (issue 12, D8).

Each argon2 hash allocates 19 MiB, which glibc keeps, once freed, in the arena of the thread that
freed it (a thread keeps its arena; there are up to 8 per core). When hashes ran on anyio's
default thread pool, which FastAPI shares with every plain-`def` endpoint and dependency, they
landed on whichever of its threads was free, and every arena came to keep a block of its own:
a few hundred logins added hundreds of MiB. Here a real server (`app.main:app` under uvicorn,
SQLite) takes logins while a plain-`def` route keeps that pool busy, pinned to at most two CPUs
so the bound is the same on every machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT
from tests.conftest import PASSWORD, SECRET_KEY, in_ci
from tests.servers import rss_mib

CPUS = 2
LOGINS = 400
CONCURRENCY = 16  # clients logging in, and as many more keeping the default thread pool busy
HASH_BLOCK_MIB = 19
# Hashing runs on one thread per core (two here), each keeping a block for its next hash -- now
# and then one more, when a thread sharing its arena took a piece of the freed block meanwhile
# (about 1 run in 7: +60 MiB instead of +40); the rest is what any requests add (a little heap, a
# few more threads). Far from a block per arena: +170 to +230 MiB when hashing used the default pool.
MAX_GROWTH_MIB = (CPUS + 1) * HASH_BLOCK_MIB + 20

# The server: pinned to the first CPUS of the CPUs it got, then `app.main:app` plus one plain-def
# route (FastAPI runs it on anyio's default thread pool), under uvicorn.
_SERVER = """
import os, sys, time
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cpus}])
import uvicorn
from app.main import app

@app.get("/blocking")
def blocking() -> None:
    time.sleep(0.01)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    """A port free now, below the kernel's ephemeral range (from which the test's own connections
    draw their local ports, so one of them could take the server's while it starts)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12_000), low), k=50):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {low}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The server's base URL and process id, serving a fresh SQLite database."""
    if not (Path("/proc/self/status").is_file() and hasattr(os, "sched_setaffinity")):
        reason = "reads resident memory from /proc and pins CPUs: Linux only"
        if in_ci():
            pytest.fail(f"CI=true runs every test: {reason}", pytrace=False)
        pytest.skip(reason)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'memory.db'}",
        "SECRET_KEY": SECRET_KEY,
        "MIGRATE_ON_STARTUP": "true",
        # Hundreds of logins from one address to one account are what this test is about.
        "RATE_LIMIT_ENABLED": "false",
    }
    command = [sys.executable, "-c", _SERVER.format(cpus=CPUS), str(port)]
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 -- the test's own interpreter and arguments
            command, cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not serving after 30 s:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{base_url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=15)


async def _log_in(base_url: str, emails: list[str]) -> None:
    limits = httpx.Limits(max_connections=2 * CONCURRENCY)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        for email in emails:
            body = {"email": email, "name": "Reader", "password": PASSWORD}
            assert (await client.post("/users", json=body)).status_code == 201
        pending = iter(range(LOGINS))
        done = asyncio.Event()

        async def log_in() -> None:
            for number in pending:
                form = {"username": emails[number % len(emails)], "password": PASSWORD}
                response = await client.post("/auth/token", data=form)
                assert response.status_code == 200, response.text

        async def keep_threads_busy() -> None:
            while not done.is_set():
                assert (await client.get("/blocking")).status_code == 200

        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(keep_threads_busy())
            await asyncio.gather(*(log_in() for _ in range(CONCURRENCY)))
            done.set()


async def test_logins_beside_work_on_the_default_thread_pool_do_not_grow_the_server(server: tuple[str, int]) -> None:
    base_url, pid = server
    before = rss_mib(pid)
    await _log_in(base_url, [f"reader{n}@example.com" for n in range(4)])
    growth = rss_mib(pid) - before
    assert growth < MAX_GROWTH_MIB, f"{LOGINS} logins grew the server by {growth:.0f} MiB (from {before:.0f} MiB)"
