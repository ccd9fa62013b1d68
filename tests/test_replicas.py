"""Reads from a real streaming replica, with read-your-writes (README: Scaling out).

Each test makes its own primary and replica (tests/replication.py) and serves the app in process
against them, the primary for writes and units of work, the replica for reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import coredis
import httpx
import pytest

from app.config import Settings, load_settings
from app.main import create_app
from app.read_positions import HEADER
from app.replicas import format_lsn, parse_lsn
from tests.conftest import GENEROUS_RATE_LIMIT, PASSWORD, REDIS_URL, SECRET_KEY, new_email, serving
from tests.databases import ScratchDatabase
from tests.replication import Replication, primary_and_replica

# One replica behind by design: it applies the WAL it receives this long after the commit.
APPLY_DELAY_MS = 300
pytestmark = pytest.mark.backends("postgresql")


@pytest.fixture
def delayed() -> Iterator[Replication]:
    with primary_and_replica(apply_delay_ms=APPLY_DELAY_MS) as replication:
        yield replication


@pytest.fixture
def prompt() -> Iterator[Replication]:
    with primary_and_replica() as replication:
        yield replication


def _settings(replication: Replication, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": replication.primary.url,
        "database_replica_urls": replication.replica.url,
        "secret_key": SECRET_KEY,
        "migrate_on_startup": True,
        "metrics_enabled": False,
        "rate_limit_login_account": GENEROUS_RATE_LIMIT,
        "rate_limit_login_address": GENEROUS_RATE_LIMIT,
        "rate_limit_signup_address": GENEROUS_RATE_LIMIT,
        "_env_file": None,
    }
    return load_settings(**(values | overrides))


async def _author(client: httpx.AsyncClient) -> tuple[dict[str, str], int, str]:
    """A signed-in author's headers, a post of theirs, and the position of that write."""
    email = new_email()
    assert (
        await client.post("/users", json={"email": email, "name": "Writer", "password": PASSWORD})
    ).status_code == 201
    token = (await client.post("/auth/token", data={"username": email, "password": PASSWORD})).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    created = await client.post("/posts", json={"title": "v0", "content": "replicated"}, headers=headers)
    assert created.status_code == 201, created.text
    assert parse_lsn(created.headers[HEADER]) > 0
    return headers, int(created.json()["id"]), created.headers[HEADER]


@asynccontextmanager
async def _served(replication: Replication) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], int]]:
    """The app on the pair, once the replica is in use: a client, an author's headers, their post."""
    async with serving(create_app(_settings(replication))) as client:
        await _wait_for_state(client, "ok")
        headers, post_id, _ = await _author(client)
        yield client, headers, post_id


async def _replica_reads(client: httpx.AsyncClient) -> int:
    ready = await client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    reads: int = ready.json()["replicas"][0]["reads"]
    return reads


async def _wait_for_state(client: httpx.AsyncClient, state: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text  # a replica's state never makes the service unready
        replica: dict[str, Any] = ready.json()["replicas"][0]
        if replica["state"] == state:
            return replica
        assert time.monotonic() < deadline, f"the replica is not {state} after {seconds} s: {replica}"
        await asyncio.sleep(0.1)


async def test_a_client_that_wrote_never_reads_older_data(backend: ScratchDatabase, delayed: Replication) -> None:
    async with _served(delayed) as (client, headers, post_id):
        stale, views_stale = [], []
        for round_trip in range(1, 1001):
            title = f"v{round_trip}"
            edited = await client.patch(f"/posts/{post_id}", json={"title": title}, headers=headers)
            assert edited.status_code == 200, edited.text
            if round_trip % 100 == 0:
                # Long enough for the replica to have applied the edit: this read may be its.
                await asyncio.sleep(APPLY_DELAY_MS / 1000 + 0.5)
            read = await client.get(f"/posts/{post_id}", headers=headers)
            assert read.status_code == 200, read.text
            if read.json()["title"] != title:
                stale.append((round_trip, read.json()["title"]))
            if round_trip % 10 == 0:
                # Anonymous: only the position sent back says what the read must include.
                viewed = await client.post(f"/posts/{post_id}/views")
                seen = await client.get(f"/posts/{post_id}", headers={HEADER: viewed.headers[HEADER]})
                if seen.json()["views"] < viewed.json()["views"]:
                    views_stale.append((round_trip, seen.json()["views"], viewed.json()["views"]))
        assert stale == []
        assert views_stale == []
        # The replica served reads meanwhile (those after the pauses, and the anonymous ones).
        assert await _replica_reads(client) > 0


async def test_a_new_account_reads_itself_with_its_first_token(backend: ScratchDatabase, delayed: Replication) -> None:
    """Sign-up and log-in carry no token of their own: their position is the new account's."""
    async with serving(create_app(_settings(delayed))) as client:
        await _wait_for_state(client, "ok")
        for _ in range(20):
            email = new_email()
            signed_up = await client.post("/users", json={"email": email, "name": "New", "password": PASSWORD})
            assert signed_up.status_code == 201, signed_up.text
            token = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
            assert token.status_code == 200, token.text
            me = await client.get("/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert me.status_code == 200, me.text  # not a 401 from a replica that has no such account yet
            assert me.json()["email"] == email


async def test_reads_without_a_position_use_the_replica_and_see_no_more_than_the_lag(
    backend: ScratchDatabase, delayed: Replication
) -> None:
    async with _served(delayed) as (client, headers, post_id):
        before = await _replica_reads(client)
        for _ in range(20):
            assert (await client.get("/posts", params={"limit": 5})).status_code == 200
        assert await _replica_reads(client) >= before + 20
        # A position in the future (no server has it yet) is the primary's to serve, at once.
        started = time.monotonic()
        ahead = format_lsn(parse_lsn("FFFF/0"))
        assert (await client.get(f"/posts/{post_id}", headers={HEADER: ahead})).status_code == 200
        assert time.monotonic() - started < 2
        bad = await client.get(f"/posts/{post_id}", headers={HEADER: "yesterday"})
        assert bad.status_code == 400
        assert bad.json()["code"] == "bad_write_position"
        # The author's reads follow its writes (the test above); just after one, not to the replica.
        assert (await client.patch(f"/posts/{post_id}", json={"title": "now"}, headers=headers)).status_code == 200
        assert (await client.get(f"/posts/{post_id}", headers=headers)).json()["title"] == "now"


async def test_a_replica_further_behind_than_the_bound_serves_no_one(
    backend: ScratchDatabase, delayed: Replication
) -> None:
    # The replica applies WAL 300 ms late; allowed 0.1 s, it is lagging for as long as writes go on.
    async with serving(create_app(_settings(delayed, db_replica_max_lag=0.1))) as client:
        await _wait_for_state(client, "ok")
        headers, post_id, _ = await _author(client)
        writing = True

        async def keep_writing() -> None:
            round_trip = 0
            while writing:
                round_trip += 1
                await client.patch(f"/posts/{post_id}", json={"title": f"w{round_trip}"}, headers=headers)

        writer = asyncio.create_task(keep_writing())
        try:
            lagging = await _wait_for_state(client, "lagging")
            for _ in range(10):
                assert (await client.get("/posts", params={"limit": 5})).status_code == 200
            # Anonymous reads went to the primary (a check that found it caught up between two
            # writes may let one through; not ten).
            assert await _replica_reads(client) <= lagging["reads"] + 2
        finally:
            writing = False
            await writer


async def test_a_replica_down_costs_no_read_and_is_used_again_when_back(
    backend: ScratchDatabase, prompt: Replication
) -> None:
    async with _served(prompt) as (client, _, post_id):
        # Anonymous reads may lag by up to DB_REPLICA_MAX_LAG: wait until the replica has the post.
        for _ in range(200):
            if (await client.get(f"/posts/{post_id}")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        for _ in range(5):
            assert (await client.get(f"/posts/{post_id}")).status_code == 200
        used = await _replica_reads(client)
        assert used > 0

        prompt.replica.stop()
        # At once, before the watcher has noticed: the pooled connections to it are dead.
        for _ in range(50):
            response = await client.get(f"/posts/{post_id}")
            assert response.status_code == 200, response.text
        down = await _wait_for_state(client, "down")
        assert down["detail"]
        for _ in range(20):
            assert (await client.get(f"/posts/{post_id}")).status_code == 200
        assert await _replica_reads(client) == down["reads"]  # none while it is down

        prompt.replica.start()
        back = await _wait_for_state(client, "ok")
        for _ in range(10):
            assert (await client.get(f"/posts/{post_id}")).status_code == 200
        assert await _replica_reads(client) >= back["reads"] + 10


async def test_processes_share_write_positions_through_redis(
    backend: ScratchDatabase, delayed: Replication, redis_prefix: str
) -> None:
    shared = {"rate_limit_storage_url": REDIS_URL, "rate_limit_key_prefix": redis_prefix}
    writer_app, reader_app = create_app(_settings(delayed, **shared)), create_app(_settings(delayed, **shared))
    async with serving(writer_app) as writer, serving(reader_app) as reader:
        await _wait_for_state(reader, "ok")
        headers, post_id, _ = await _author(writer)
        stale = []
        for round_trip in range(1, 101):
            title = f"v{round_trip}"
            assert (await writer.patch(f"/posts/{post_id}", json={"title": title}, headers=headers)).status_code == 200
            # Another process, which saw none of the writes: Redis tells it where they are.
            read = await reader.get(f"/posts/{post_id}", headers=headers)
            if read.json()["title"] != title:
                stale.append(round_trip)
        assert stale == []
        user_id = (await writer.get("/users/me", headers=headers)).json()["id"]
        client = coredis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            assert await client.get(f"{redis_prefix}:write-position:{user_id}")  # shared, not guessed
        finally:
            client.connection_pool.disconnect()
        # Once the replica has caught up, the reader's reads for that user are the replica's again.
        await asyncio.sleep(APPLY_DELAY_MS / 1000 + 0.6)
        before = await _replica_reads(reader)
        assert (await reader.get(f"/posts/{post_id}", headers=headers)).json()["title"] == "v100"
        assert await _replica_reads(reader) > before
