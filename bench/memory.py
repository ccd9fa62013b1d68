"""One worker's resident memory through a burst of logins and mixed requests (issue 12, D8).

    .venv/bin/python -m bench.memory [--requests 20000] [--logins 3000] [--concurrency 16]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--threaded] [--checkout DIR] [--env NAME=VALUE]
    .venv/bin/python -m bench.memory --hash-cost

Serves the app as `python -m app serve` does (uvicorn, one worker, `app.serving:served_app`) from
a SQLite database in a temporary directory (with `--postgres`, a scratch database on that server,
dropped at the end), registers users and gives them posts, then runs two phases of the same mix:
`--requests` mixed requests (reads of posts, profiles and comments, views, new posts and
comments) with `--logins` logins shuffled in, from `--concurrency` clients. The server's VmRSS is
read after start, after setup, and after each phase; the target is at most 160 MiB after phase 1
and no growth over phase 2. `--threaded` adds a plain-`def` route to the app and to the mix, so
that anyio's default thread pool has other work too; `--checkout` serves another checkout's app
for a before/after (`git archive REF | tar -x -C DIR`; with `--threaded`, copy this file into
its bench/ too); `--env` passes a variable to the server
(e.g. `MALLOC_ARENA_MAX=2`, to try glibc's tunables). `--hash-cost` measures instead what a hash
costs when its 19 MiB block is returned to the kernel after each use. Not a test: it takes
minutes and prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from bench.servers import ROOT, AppUnderTest, Running, checkout_app, serve, server_env

PASSWORD = "memory bench password"  # noqa: S105 -- the bench's own throwaway accounts
USERS = 40
POSTS_PER_USER = 5
TARGET_MIB = 160.0
THREADED_SHARE = 0.1  # of the mixed requests, with --threaded


@dataclass
class Site:
    """What the mixed requests address: the accounts, their tokens, the posts so far."""

    emails: list[str]
    tokens: list[dict[str, str]]
    user_ids: list[int]
    post_ids: list[int] = field(default_factory=list)
    threaded_share: float = 0.0


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    login_seconds: list[float] = field(default_factory=list)


Send = Callable[[httpx.AsyncClient, Site, random.Random, Tally], Awaitable[None]]


def _count(response: httpx.Response, tally: Tally, kind: str) -> None:
    tally.statuses[f"{kind} {response.status_code}"] += 1


async def _login(client: httpx.AsyncClient, site: Site, rng: random.Random, tally: Tally) -> None:
    started = time.perf_counter()
    response = await client.post("/auth/token", data={"username": rng.choice(site.emails), "password": PASSWORD})
    tally.login_seconds.append(time.perf_counter() - started)
    _count(response, tally, "login")


async def _mixed(client: httpx.AsyncClient, site: Site, rng: random.Random, tally: Tally) -> None:
    """One request of a blog's usual mix: mostly reads, some writes."""
    post = rng.choice(site.post_ids)
    token = rng.choice(site.tokens)
    roll = rng.random()
    if rng.random() < site.threaded_share:
        response = await client.get("/bench/threaded")
    elif roll < 0.25:
        order = rng.choice(("created_at", "views", "id"))
        response = await client.get("/posts", params={"limit": 20, "order_by": order})
    elif roll < 0.40:
        response = await client.get(f"/posts/{post}")
    elif roll < 0.55:
        response = await client.get(f"/users/{rng.choice(site.user_ids)}")
    elif roll < 0.65:
        response = await client.get(f"/posts/{post}/comments")
    elif roll < 0.70:
        response = await client.get("/users", params={"include": "posts", "limit": 20})
    elif roll < 0.80:
        response = await client.post(f"/posts/{post}/views")
    elif roll < 0.90:
        body = {"title": f"Post {rng.randrange(10**6)}", "content": "words " * rng.randrange(10, 400)}
        response = await client.post("/posts", json=body, headers=token)
        if response.status_code == 201:
            site.post_ids.append(response.json()["id"])
    else:
        body = {"body": "a comment " * rng.randrange(1, 50)}
        response = await client.post(f"/posts/{post}/comments", json=body, headers=token)
    _count(response, tally, "mixed")


async def _run(client: httpx.AsyncClient, site: Site, jobs: list[Send], concurrency: int, seed: int) -> Tally:
    tally = Tally()
    queue = iter(jobs)

    async def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)  # noqa: S311 -- a reproducible mix, not security
        for job in queue:
            await job(client, site, rng, tally)

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return tally


def served_with_a_threaded_route() -> FastAPI:
    """`python -m app serve`'s app plus a plain-`def` route, which FastAPI runs on anyio's default
    thread pool, as it does every plain-`def` endpoint and dependency (the login form was one
    until 7c7f925): what the app's own code does on that pool then shares it with other work."""
    from app.serving import served_app  # noqa: PLC0415 -- in the server: importing it builds the app

    served = served_app()

    @served.get("/bench/threaded", include_in_schema=False)
    def threaded() -> dict[str, bool]:
        time.sleep(0.005)
        return {"ok": True}

    return served


async def _set_up(client: httpx.AsyncClient, concurrency: int) -> Site:
    emails = [f"reader{n}@example.com" for n in range(USERS)]
    gate = asyncio.Semaphore(concurrency)

    async def register(email: str) -> int:
        async with gate:
            body = {"email": email, "name": f"Reader {email[6:-12]}", "password": PASSWORD, "bio": "Reads a lot."}
            response = await client.post("/users", json=body)
            response.raise_for_status()
            user_id: int = response.json()["id"]
            return user_id

    user_ids = list(await asyncio.gather(*(register(email) for email in emails)))
    tokens = []
    for email in emails:
        response = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
        response.raise_for_status()
        tokens.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    site = Site(emails, tokens, user_ids)
    for token in tokens:
        for n in range(POSTS_PER_USER):
            body = {"title": f"First {n}", "content": "hello " * 50}
            response = await client.post("/posts", json=body, headers=token)
            response.raise_for_status()
            site.post_ids.append(response.json()["id"])
    return site


def _phase(requests: int, logins: int, seed: int) -> list[Send]:
    jobs: list[Send] = []
    jobs.extend([_mixed] * requests)
    jobs.extend([_login] * logins)
    random.Random(seed).shuffle(jobs)  # noqa: S311 -- a reproducible mix, not security
    return jobs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _settle(server: Running) -> float:
    """RSS once the server is idle (the last responses may still be freeing memory)."""
    time.sleep(1.0)
    return server.rss_mib()


def _threads(server: Running) -> int:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def _summary(tally: Tally) -> str:
    logins = sorted(tally.login_seconds)
    latency = ""
    if logins:
        p95 = logins[int(0.95 * (len(logins) - 1))]
        latency = f"; login median {1000 * statistics.median(logins):.0f} ms, p95 {1000 * p95:.0f} ms"
    statuses = ", ".join(f"{key}: {count}" for key, count in sorted(tally.statuses.items()))
    return statuses + latency


async def _load(server: Running, args: argparse.Namespace, rows: list[tuple[str, float, int]]) -> list[str]:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    notes: list[str] = []
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as client:
        site = await _set_up(client, args.concurrency)
        site.threaded_share = THREADED_SHARE if args.threaded else 0.0
        label = f"set up ({USERS} users, {len(site.post_ids)} posts)"
        rows.append((label, _settle(server), _threads(server)))
        for number in (1, 2):
            tally = await _run(client, site, _phase(args.requests, args.logins, number), args.concurrency, number)
            label = f"after phase {number} ({args.requests:,} mixed + {args.logins:,} logins)"
            rows.append((label, _settle(server), _threads(server)))
            notes.append(f"phase {number}: {_summary(tally)}")
    return notes


async def _admin(server: str, statement: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def _database(scratch: Path, postgres: str | None) -> Iterator[str]:
    """The URL of an empty database: a file in `scratch`, or a new database on `postgres`."""
    if postgres is None:
        yield f"sqlite:///{scratch / 'memory.db'}"
        return
    name = f"memory_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres, f'CREATE DATABASE "{name}"'))
    try:
        yield f"{postgres.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(_admin(postgres, f'DROP DATABASE "{name}" WITH (FORCE)'))


# CPU time of one login's hash through app.security, in a fresh interpreter: with glibc's own
# policy, or with the mmap threshold fixed first (mallopt), so that every 19 MiB block is mapped
# for its hash and unmapped on free instead of being reused from the thread's arena.
_HASH_COST = """
import asyncio, ctypes, statistics, sys, time
if sys.argv[1] == "returned":
    ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
from app.security import hash_password, verify_password

async def main():
    stored = await hash_password("a password")
    costs = []
    for _ in range(100):
        started = time.process_time()
        await verify_password(stored, "a password")
        costs.append(time.process_time() - started)
    print(1000 * statistics.median(costs))

asyncio.run(main())
"""


def _hash_cost(rounds: int = 4) -> None:
    costs: dict[str, list[float]] = {"kept": [], "returned": []}
    for _ in range(rounds):
        for policy, figures in costs.items():
            run = subprocess.run(
                [sys.executable, "-c", _HASH_COST, policy], cwd=ROOT, capture_output=True, text=True, check=True
            )
            figures.append(float(run.stdout))
    for policy, figures in costs.items():
        print(f"{policy:>8}: CPU per hash {', '.join(f'{ms:.1f}' for ms in figures)} ms (median of 100 each)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="mixed requests per phase")
    parser.add_argument("--logins", type=int, default=3_000, help="logins per phase, shuffled among them")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server's URL: serve from a scratch database")
    parser.add_argument(
        "--threaded",
        action="store_true",
        help=f"send {THREADED_SHARE:.0%}% of the mixed requests to a plain-def route (on the default thread pool)",
    )
    parser.add_argument("--checkout", type=Path, default=ROOT, metavar="DIR", help="serve the app of this checkout")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra server variable")
    parser.add_argument(
        "--hash-cost",
        action="store_true",
        help="instead: CPU per login hash with the 19 MiB block kept for reuse, and with it returned (mallopt)",
    )
    args = parser.parse_args()
    if args.hash_cost:
        _hash_cost()
        return

    extra = dict(item.split("=", 1) for item in args.env)
    with (
        tempfile.TemporaryDirectory(prefix="blogapi-memory-") as scratch,
        _database(Path(scratch), args.postgres) as database_url,
    ):
        env = server_env(database_url, secrets.token_urlsafe(32), pool_size=10) | {
            "MIGRATE_ON_STARTUP": "true",
            # A few clients log in thousands of times: the throttles on credentials would refuse them.
            "RATE_LIMIT_ENABLED": "false",
        }
        app = checkout_app("app", args.checkout.resolve(), f"the app of {args.checkout}")
        if args.threaded:
            if not (app.checkout / "bench" / "memory.py").is_file():
                raise SystemExit(f"--threaded serves bench/memory.py from the checkout: copy it into {app.checkout}")
            target = "bench.memory:served_with_a_threaded_route"
            app = AppUnderTest("app", target, "the app plus a plain-def route", app.checkout, factory=True)
        with serve(app, port=_free_port(), env=env | extra, log=Path(scratch) / "server.log") as server:
            rows = [("started", _settle(server), _threads(server))]
            notes = asyncio.run(_load(server, args, rows))

    settings = "".join(f", {item}" for item in [*(["--threaded"] if args.threaded else []), *args.env])
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{app.target} from {app.checkout} (uvicorn, 1 worker), {backend}, {args.concurrency} clients{settings}")
    print(f"| {'point':<50} | VmRSS MiB | threads |\n|{'-' * 52}|-----------|---------|")
    for label, rss, threads in rows:
        print(f"| {label:<50} | {rss:9.1f} | {threads:7d} |")
    for note in notes:
        print(note)
    after_one, after_two = rows[-2][1], rows[-1][1]
    verdict = "met" if after_one <= TARGET_MIB and after_two <= after_one * 1.02 else "MISSED"
    print(f"target (<= {TARGET_MIB:g} MiB after phase 1, no growth over phase 2): {verdict}")


if __name__ == "__main__":
    main()
