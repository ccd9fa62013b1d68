"""The benchmark's data set and the requests each endpoint is measured with."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlencode

import asyncpg
import httpx

from bench.servers import ROOT
from bench.wrk import Request

SEED_PASSWORD = "seeded password"  # noqa: S105 -- the documented password of every seeded user (app.seed)
SAMPLE = 1000  # random ids per endpoint: the same list, in the same order, for every app
DEEP_PAGE = 25_000


@dataclass(frozen=True, slots=True)
class Scale:
    users: int
    posts: int
    comments: int


@dataclass(frozen=True, slots=True)
class Endpoint:
    key: str
    title: str
    kind: str  # "read", "write" or "login"
    requests: list[Request]


def _plain(url: str) -> str:
    """asyncpg's DSN: the same database without SQLAlchemy's driver suffix."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _counts(url: str) -> tuple[int, int, int]:
    connection = await asyncpg.connect(_plain(url))
    try:
        row = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), (SELECT count(*) FROM comments)"
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])
    finally:
        await connection.close()


async def _ensure_database(url: str) -> None:
    """Create the benchmark's own database when it does not exist yet."""
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    server = await asyncpg.connect(_plain(url).rsplit("/", 1)[0] + "/postgres")
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            print(f"creating database {name}", flush=True)
            await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()


async def _remove_earlier_writes(url: str, scale: Scale) -> None:
    """Rows the write benchmarks of an earlier run added go, so every run reads the same data."""
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.execute("DELETE FROM comments WHERE id > $1", scale.comments)
        deleted = await connection.execute("DELETE FROM posts WHERE id > $1", scale.posts)
        await connection.execute("DELETE FROM users WHERE id > $1", scale.users)
        if deleted != "DELETE 0":
            await connection.execute("VACUUM ANALYZE posts")
    finally:
        await connection.close()


async def _vacuum(url: str) -> None:
    """What autovacuum would do to freshly loaded tables in time: statistics and the visibility map
    (index-only scans, such as an offset's, read the heap for every page it does not mark)."""
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.execute("VACUUM ANALYZE users, posts, comments")
    finally:
        await connection.close()


def _python(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True)


def prepare(url: str, scale: Scale, env: dict[str, str]) -> None:
    """A migrated database holding exactly the seeded scale; seeded (once) when empty."""
    asyncio.run(_ensure_database(url))
    _python("-m", "app", "migrate", env=env)
    asyncio.run(_remove_earlier_writes(url, scale))
    counts = asyncio.run(_counts(url))
    if counts == (scale.users, scale.posts, scale.comments):
        return
    if counts != (0, 0, 0):
        raise SystemExit(
            f"the benchmark database holds {counts} users/posts/comments, not {scale}: "
            "drop it (or pass --database-url of an empty one) and run again"
        )
    _python(
        "-m",
        "app",
        "seed",
        "--users",
        str(scale.users),
        "--posts",
        str(scale.posts),
        "--comments",
        str(scale.comments),
        "--seed",
        "1",
        env=env,
    )
    asyncio.run(_vacuum(url))


async def _sample(url: str, scale: Scale) -> tuple[list[int], list[str], list[int]]:
    """Random active users (ids and emails) and random posts that have comments."""
    rng = random.Random(5)  # noqa: S311 -- a reproducible sample, not a secret
    connection = await asyncpg.connect(_plain(url))
    try:
        users = await connection.fetch(
            "SELECT id, email FROM users WHERE is_active AND id = ANY($1::int[]) ORDER BY id",
            rng.sample(range(1, scale.users + 1), min(scale.users, SAMPLE * 2)),
        )
        posts = await connection.fetch(
            "SELECT DISTINCT post_id FROM comments WHERE id = ANY($1::int[]) ORDER BY post_id",
            rng.sample(range(1, scale.comments + 1), min(scale.comments, SAMPLE)),
        )
    finally:
        await connection.close()
    chosen = rng.sample(list(users), min(len(users), SAMPLE))
    post_ids = [row["post_id"] for row in posts]
    rng.shuffle(post_ids)
    return [row["id"] for row in chosen], [row["email"] for row in chosen], post_ids


def endpoints(url: str, scale: Scale, app_url: str) -> list[Endpoint]:
    """Every measured endpoint with its request list. `app_url` (this project, running) issues the
    deep cursor and the bearer token, which every app accepts: they share the secret."""
    user_ids, emails, post_ids = asyncio.run(_sample(url, scale))
    deep_skip = min(DEEP_PAGE * 20, scale.posts - 20) - 20
    deep = httpx.get(f"{app_url}/posts", params={"limit": 20, "skip": deep_skip}, timeout=60).json()
    cursor = deep["next_cursor"]
    login = httpx.post(f"{app_url}/auth/token", data={"username": emails[0], "password": SEED_PASSWORD}, timeout=30)
    login.raise_for_status()
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    logins = [urlencode({"username": email, "password": SEED_PASSWORD}) for email in emails]
    body = '{"title": "Benchmarking the data layer", "content": "Measured side by side, in one run."}'
    return [
        Endpoint("user", "GET /users/{id}", "read", [Request("GET", f"/users/{i}") for i in user_ids]),
        Endpoint("posts_first", "GET /posts (first page of 20)", "read", [Request("GET", "/posts?limit=20")]),
        Endpoint(
            "posts_deep_cursor",
            f"GET /posts by cursor (page {deep_skip // 20 + 2:,})",
            "read",
            [Request("GET", f"/posts?limit=20&cursor={cursor}")],
        ),
        Endpoint(
            "posts_offset",
            f"GET /posts?skip={deep_skip + 20:,}",
            "read",
            [Request("GET", f"/posts?limit=20&skip={deep_skip + 20}")],
        ),
        Endpoint(
            "comments",
            "GET /posts/{id}/comments",
            "read",
            [Request("GET", f"/posts/{i}/comments") for i in post_ids],
        ),
        Endpoint(
            "users_posts",
            "GET /users?include=posts",
            "read",
            # The earliest members, who have written the most: every user listed brings 5 posts. The
            # default order lists the newest members, who have not written anything yet -- an empty
            # `posts` list on every user, which is what the runs up to 2026-11-25-3 measured.
            [Request("GET", f"/users?include=posts&order=asc&skip={skip}") for skip in range(0, 100, 10)],
        ),
        Endpoint("create_post", "POST /posts", "write", [Request("POST", "/posts", bearer, body)]),
        Endpoint(
            "add_view", "POST /posts/{id}/views", "write", [Request("POST", f"/posts/{i}/views") for i in post_ids]
        ),
        Endpoint(
            "login",
            "POST /auth/token",
            "login",
            [Request("POST", "/auth/token", form, login) for login in logins],
        ),
    ]
