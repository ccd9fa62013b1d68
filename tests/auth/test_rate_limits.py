"""Throttles on credentials (issue 12, D4): failed logins per account and per address, sign-ups per address.

The limits do not depend on the database backend, so these tests run once, on a SQLite database
of their own, each against an app built with the limits it tests. Two tests use Redis for real
(TEST_REDIS_URL, default redis://127.0.0.1:6379/15): skipped when it is not running, except
under CI=true, where that is a failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import coredis
import httpx
import pytest
from fastapi import FastAPI

from app.client_address import resolve
from app.config import PROJECT_ROOT, ConfigError, load_settings
from app.main import create_app
from app.migrations import upgrade_to_head
from app.rate_limits import address_key
from app.setting_values import parse_networks, to_async_storage_url
from tests.conftest import PASSWORD, REDIS_URL, SECRET_KEY, StatementCounter, make_settings, new_email
from tests.databases import ScratchDatabase, create_database, drop_database, in_thread
from tests.test_migration_lock import _free_ports

THROTTLED = {"detail": "Too many attempts; retry later", "code": "rate_limited"}
WRONG = "wrong password!"
CLIENT = "192.0.2.10"


class Api:
    """One app, called from any address (the ASGI peer) and with any X-Forwarded-For."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def post(
        self, path: str, *, peer: str = CLIENT, forwarded_for: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
        transport = httpx.ASGITransport(self.app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, headers=headers, **kwargs)

    async def login(self, email: str, password: str = WRONG, **kwargs: Any) -> httpx.Response:
        return await self.post("/auth/token", data={"username": email, "password": password}, **kwargs)

    async def register(self, email: str | None = None, **kwargs: Any) -> httpx.Response:
        payload = {"email": email or new_email("limited"), "name": "Limited", "password": PASSWORD}
        return await self.post("/users", json=payload, **kwargs)

    async def account(self) -> str:
        response = await self.register(peer="198.18.0.1")
        assert response.status_code == 201, response.text
        email: str = response.json()["email"]
        return email


Serve = Callable[..., Awaitable[Api]]


@pytest.fixture(scope="module")
def database() -> Iterator[ScratchDatabase]:
    scratch = create_database("sqlite")
    try:
        in_thread(upgrade_to_head, scratch.url)
        yield scratch
    finally:
        drop_database(scratch)


@pytest.fixture
async def serve(database: ScratchDatabase) -> AsyncIterator[Serve]:
    """Apps with the given settings, each through its lifespan until the test ends."""
    async with AsyncExitStack() as stack:

        async def _serve(**overrides: Any) -> Api:
            app = create_app(make_settings(database, **overrides))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return Api(app)

        yield _serve


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json() == THROTTLED
    return int(response.headers["retry-after"])


async def test_failures_past_the_account_limit_are_429_alike_for_existing_and_unknown_accounts(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="3/15 minutes")
    throttled = []
    for email in (await api.account(), new_email("nobody")):
        for _ in range(3):
            response = await api.login(email)
            assert response.status_code == 401, response.text
        response = await api.login(email)
        assert 1 <= _retry_after(response) <= 15 * 60
        throttled.append(response)
        # Throttled before the password is looked at: the right one is refused too.
        assert (await api.login(email, PASSWORD)).status_code == 429
    existing, unknown = throttled
    assert existing.content == unknown.content
    assert set(existing.headers) == set(unknown.headers)


async def test_the_account_limit_holds_in_any_spelling_of_the_email(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="2/15 minutes")
    email = await api.account()
    assert (await api.login(email)).status_code == 401
    assert (await api.login(f"  {email.upper()} ")).status_code == 401
    assert (await api.login(email.title())).status_code == 429
    # Not an address at all: keyed by its lower-cased, stripped text.
    assert (await api.login("Not An Email")).status_code == 401
    assert (await api.login(" not an email")).status_code == 401
    assert (await api.login("NOT AN EMAIL  ")).status_code == 429


async def test_a_concurrent_burst_gets_exactly_the_limit_through(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="5/15 minutes")
    email = await api.account()
    # Every attempt takes its slot before its password is checked: none slips past the count.
    responses = await asyncio.gather(*(api.login(email) for _ in range(30)))
    assert sorted(response.status_code for response in responses) == [401] * 5 + [429] * 25


async def test_a_throttled_login_costs_no_query_and_no_hash(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="1/15 minutes")
    email = await api.account()
    assert (await api.login(email)).status_code == 401
    async with StatementCounter(api.app.state.db) as statements:
        for _ in range(5):
            assert (await api.login(email)).status_code == 429
    assert statements.count == 0
    # argon2 (about 20 ms) is most of a failed login; a throttled one is answered without it.
    unthrottled = await serve(rate_limit_login_account="1000/15 minutes")
    assert await _median_seconds(api, email, 429) < 0.5 * await _median_seconds(unthrottled, email, 401)


async def _median_seconds(api: Api, email: str, status: int) -> float:
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert (await api.login(email)).status_code == status
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


async def test_a_correct_password_within_the_limit_succeeds_and_clears_the_account_count(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="3/15 minutes")
    email = await api.account()
    for _ in range(2):
        assert (await api.login(email)).status_code == 401
    assert (await api.login(email, PASSWORD)).status_code == 200
    # The two failures before the success are forgotten: three more are allowed.
    for _ in range(3):
        assert (await api.login(email)).status_code == 401
    _retry_after(await api.login(email))


async def test_the_address_limit_counts_failures_over_every_account(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="10/15 minutes", rate_limit_login_address="3/15 minutes")
    email = await api.account()
    # Successes do not count against the address.
    for _ in range(5):
        assert (await api.login(email, PASSWORD)).status_code == 200
    for _ in range(3):
        assert (await api.login(new_email("stuffed"))).status_code == 401
    _retry_after(await api.login(new_email("stuffed")))
    # Neither does the account's own limit decide: the address is throttled, for every account.
    assert (await api.login(email, PASSWORD)).status_code == 429
    # Another address is not.
    assert (await api.login(email, PASSWORD, peer="192.0.2.99")).status_code == 200
    assert (await api.login(new_email("stuffed"), peer="192.0.2.99")).status_code == 401


async def test_a_refused_login_does_not_count_against_the_other_limit(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="2/15 minutes", rate_limit_login_address="4/15 minutes")
    email = await api.account()
    for _ in range(2):
        assert (await api.login(email)).status_code == 401
    for _ in range(10):
        assert (await api.login(email)).status_code == 429
    # Ten refusals later the address has two failures, not twelve: two more are allowed.
    for _ in range(2):
        assert (await api.login(new_email("next"))).status_code == 401
    _retry_after(await api.login(new_email("next")))


async def test_sign_ups_are_limited_per_address_counting_every_attempt(serve: Serve) -> None:
    api = await serve(rate_limit_signup_address="3/hour")
    email = new_email("signup")
    assert (await api.register(email)).status_code == 201
    assert (await api.register(email)).status_code == 409
    invalid = await api.post("/users", json={"email": "not-an-email", "name": "X", "password": PASSWORD})
    assert invalid.status_code == 422
    refused = await api.register()
    assert 1 <= _retry_after(refused) <= 3600
    assert (await api.register(peer="192.0.2.99")).status_code == 201


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(serve: Serve) -> None:
    api = await serve(rate_limit_login_address="2/15 minutes")
    for forwarded_for in ("198.51.100.1", "198.51.100.2"):
        assert (await api.login(new_email("x"), forwarded_for=forwarded_for)).status_code == 401
    # A new X-Forwarded-For each time changes nothing: the peer is the client.
    _retry_after(await api.login(new_email("x"), forwarded_for="198.51.100.3"))


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(serve: Serve) -> None:
    api = await serve(rate_limit_login_address="2/15 minutes", trusted_proxies="10.0.0.0/8")
    proxy = "10.0.0.2"
    assert (await api.login(new_email("x"), peer=proxy, forwarded_for="198.51.100.7")).status_code == 401
    # What the client puts left of its own address, and our other proxies' hops, change nothing.
    client_and_hop = "203.0.113.66, 198.51.100.7, 10.9.9.9"
    assert (await api.login(new_email("x"), peer=proxy, forwarded_for=client_and_hop)).status_code == 401
    _retry_after(await api.login(new_email("x"), peer=proxy, forwarded_for="1.1.1.1, 198.51.100.7"))
    # Another client through the same proxy is not throttled, nor is the proxy itself.
    assert (await api.login(new_email("x"), peer=proxy, forwarded_for="198.51.100.8")).status_code == 401
    assert (await api.login(new_email("x"), peer=proxy)).status_code == 401


async def test_the_window_frees_its_slots_when_it_ends(serve: Serve) -> None:
    api = await serve(rate_limit_login_account="3/2 seconds")
    email = await api.account()
    for _ in range(3):
        assert (await api.login(email)).status_code == 401
    retry_after = _retry_after(await api.login(email))
    assert retry_after <= 2
    await asyncio.sleep(retry_after)
    assert (await api.login(email)).status_code == 401
    assert (await api.login(email, PASSWORD)).status_code == 200


async def test_the_limits_can_be_turned_off(serve: Serve) -> None:
    api = await serve(rate_limit_enabled=False, rate_limit_login_account="1/hour", rate_limit_signup_address="1/hour")
    email = await api.account()
    for _ in range(3):
        assert (await api.login(email)).status_code == 401
        assert (await api.register()).status_code == 201


async def test_the_openapi_schema_documents_429(serve: Serve) -> None:
    spec = (await serve()).app.openapi()
    assert "429" in spec["paths"]["/auth/token"]["post"]["responses"]
    assert "429" in spec["paths"]["/users"]["post"]["responses"]


# ---- the storage down, slow, and shared -------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_storage_fails_open_and_is_logged_once(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.rate_limits")
    api = await serve(
        rate_limit_storage_url=f"redis://127.0.0.1:{_closed_port()}/0",
        rate_limit_login_account="1/hour",
        rate_limit_signup_address="1/hour",
    )
    email = await api.account()
    assert (await api.register()).status_code == 201
    for _ in range(3):
        assert (await api.login(email)).status_code == 401
    assert (await api.login(email, PASSWORD)).status_code == 200
    warnings = [record.getMessage() for record in caplog.records if record.name == "app.rate_limits"]
    assert len(warnings) == 1, warnings
    assert "rate-limit storage failing, requests are not throttled" in warnings[0]


async def test_a_storage_that_does_not_answer_fails_open_within_the_timeout(serve: Serve) -> None:
    # Accepts connections (the kernel does, into the backlog) and never says a word.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        api = await serve(
            rate_limit_storage_url=f"redis://127.0.0.1:{port}/0",
            rate_limit_storage_timeout=0.2,
            rate_limit_login_account="1/hour",
        )
        email = new_email("silent")
        started = time.monotonic()
        for _ in range(2):
            assert (await api.login(email)).status_code == 401
        # Two calls to the storage per login, each given up on after 0.2 s.
        assert time.monotonic() - started < 3


def _start_server(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 -- the test's own interpreter and arguments
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until_ready(processes: dict[int, subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    waiting = set(processes)
    while waiting and time.monotonic() < deadline:
        for port in list(waiting):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    waiting.discard(port)
            except httpx.HTTPError:
                pass
            if processes[port].poll() is not None:
                pytest.fail(f"the server on {port} exited:\n{processes[port].communicate()[1][-3000:]}")
        time.sleep(0.2)
    assert not waiting, f"not serving after 60 s: {sorted(waiting)}"


async def test_two_processes_share_the_counts_through_redis(
    database: ScratchDatabase, redis_prefix: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database.url_string,
        "MIGRATE_ON_STARTUP": "false",
        "SECRET_KEY": SECRET_KEY,
        "RATE_LIMIT_STORAGE_URL": REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": redis_prefix,
        "RATE_LIMIT_LOGIN_ACCOUNT": "4/15 minutes",
        "RATE_LIMIT_LOGIN_ADDRESS": "1000/15 minutes",
        "RATE_LIMIT_SIGNUP_ADDRESS": "1000/15 minutes",
    }
    ports = _free_ports(2)
    processes = {port: _start_server(port, env) for port in ports}
    try:
        _wait_until_ready(processes)
        first, second = (f"http://127.0.0.1:{port}" for port in ports)
        async with httpx.AsyncClient(timeout=10) as http:
            email = new_email("shared")
            payload = {"email": email, "name": "Shared", "password": PASSWORD}
            assert (await http.post(f"{first}/users", json=payload)).status_code == 201

            async def login(server: str, password: str = WRONG) -> httpx.Response:
                return await http.post(f"{server}/auth/token", data={"username": email, "password": password})

            # Four failures, two on each process: the limit is reached as one.
            for server in (first, second, first, second):
                assert (await login(server)).status_code == 401
            for server in (first, second):
                _retry_after(await login(server))
            assert (await login(second, PASSWORD)).status_code == 429
            # A burst spread over both processes at once: exactly the limit gets through.
            email = new_email("burst")
            payload = {"email": email, "name": "Burst", "password": PASSWORD}
            assert (await http.post(f"{second}/users", json=payload)).status_code == 201
            burst = await asyncio.gather(*(login(server) for server in (first, second) * 8))
            assert sorted(response.status_code for response in burst) == [401] * 4 + [429] * 12
        keys = await _keys(redis_prefix)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.communicate(timeout=30)
    # Namespaced by the prefix, and the account is in there by its digest, not its email.
    assert keys
    assert all(key.startswith(f"{redis_prefix}:") for key in keys)
    assert not any(email in key for key in keys)


async def test_a_redis_counter_left_without_its_expiry_does_not_lock_the_account_for_ever(
    serve: Serve, redis_prefix: str
) -> None:
    api = await serve(
        rate_limit_storage_url=REDIS_URL, rate_limit_key_prefix=redis_prefix, rate_limit_login_account="2/15 minutes"
    )
    email = await api.account()
    for _ in range(2):
        assert (await api.login(email)).status_code == 401
    # As if the connection dropped between INCRBY and EXPIRE: the counter has no end.
    client = coredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        [key] = [key async for key in client.scan_iter(match=f"{redis_prefix}:*login-account*")]
        assert await client.persist(key)
    finally:
        client.connection_pool.disconnect()
    assert _retry_after(await api.login(email)) == 1
    # Cleared: a fresh window, with its expiry, and the limit as before.
    for _ in range(2):
        assert (await api.login(email)).status_code == 401
    assert 1 < _retry_after(await api.login(email)) <= 15 * 60


async def _keys(prefix: str) -> list[str]:
    client = coredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}:*")]
    finally:
        client.connection_pool.disconnect()


# ---- the parts, on their own ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("192.0.2.1", [], "192.0.2.1"),
        ("192.0.2.1", ["198.51.100.7"], "192.0.2.1"),  # not a proxy of ours
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["198.51.100.7"], "198.51.100.7"),
        ("10.0.0.2", ["203.0.113.1, 198.51.100.7"], "198.51.100.7"),  # the left part is the client's to forge
        ("10.0.0.2", ["198.51.100.7, 10.0.0.3"], "198.51.100.7"),  # a hop between two proxies of ours
        ("10.0.0.2", ["203.0.113.1", "198.51.100.7"], "198.51.100.7"),  # two headers are one list
        ("10.0.0.2", ["10.0.0.5, 10.0.0.3"], "10.0.0.5"),  # only our own: where it started
        ("10.0.0.2", ["not-an-ip"], "not-an-ip"),
        ("10.0.0.2", [" , "], "10.0.0.2"),
        ("::1", ["2001:DB8::1"], "2001:db8::1"),
        ("::ffff:10.0.0.2", ["198.51.100.7"], "198.51.100.7"),  # IPv4 through an IPv6 socket
        (None, ["198.51.100.7"], "unknown"),
    ],
)
def test_the_client_address_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    peer: str | None, forwarded_for: list[str], expected: str
) -> None:
    assert resolve(peer, forwarded_for, parse_networks("10.0.0.0/8, ::1")) == expected


def test_nothing_is_trusted_by_default() -> None:
    assert resolve("10.0.0.2", ["198.51.100.7"], load_settings(_env_file=None).trusted_proxies) == "10.0.0.2"


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.1") == "192.0.2.1"


def test_the_defaults_are_strict_and_in_process() -> None:
    settings = load_settings(_env_file=None)
    assert settings.rate_limit_enabled is True
    assert settings.rate_limit_login_account == "10/15 minutes"
    assert settings.rate_limit_login_address == "100/15 minutes"
    assert settings.rate_limit_signup_address == "20/hour"
    assert settings.rate_limit_storage == "async+memory://"
    assert settings.trusted_proxies == ()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", "async+memory://"),
        ("redis://127.0.0.1:6379/0", "async+redis://127.0.0.1:6379/0"),
        ("rediss://:secret@cache.example.com:6380/2", "async+rediss://:secret@cache.example.com:6380/2"),
        ("redis+unix:///run/redis.sock?db=1", "async+redis+unix:///run/redis.sock?db=1"),
        ("redis+sentinel://s1:26379,s2:26379/primary", "async+redis+sentinel://s1:26379,s2:26379/primary"),
        ("async+redis://127.0.0.1:6379", "async+redis://127.0.0.1:6379"),
    ],
)
def test_storage_urls_map_to_the_async_storage(url: str, expected: str) -> None:
    assert to_async_storage_url(url) == expected


@pytest.mark.parametrize(
    ("field", "value", "variable", "message"),
    [
        ("rate_limit_login_account", "ten per quarter", "RATE_LIMIT_LOGIN_ACCOUNT", "expected one limit"),
        ("rate_limit_login_address", "1/second;100/hour", "RATE_LIMIT_LOGIN_ADDRESS", "expected one limit"),
        ("rate_limit_signup_address", "0/hour", "RATE_LIMIT_SIGNUP_ADDRESS", "RATE_LIMIT_ENABLED=false"),
        ("rate_limit_storage_url", "memcached://cache:11211", "RATE_LIMIT_STORAGE_URL", "unsupported storage"),
        ("rate_limit_storage_url", "redis://", "RATE_LIMIT_STORAGE_URL", "needs a location"),
        ("rate_limit_key_prefix", "two words", "RATE_LIMIT_KEY_PREFIX", "pattern"),
        ("rate_limit_enabled", "perhaps", "RATE_LIMIT_ENABLED", "boolean"),
        ("trusted_proxies", "10.0.0.1/8", "TRUSTED_PROXIES", "host bits set (the network is 10.0.0.0/8)"),
        ("trusted_proxies", "10.0.0.1, proxy.internal", "TRUSTED_PROXIES", "'proxy.internal' is not an IP"),
    ],
)
def test_a_bad_limit_setting_is_one_line_naming_the_variable(
    field: str, value: str, variable: str, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(**{field: value, "_env_file": None})
    text = str(error.value)
    assert text.startswith(f"configuration error: {variable}: ")
    assert message in text
    assert "\n" not in text


def test_a_storage_url_the_library_refuses_is_a_configuration_error_without_its_password(
    database: ScratchDatabase,
) -> None:
    for url, message in [
        ("redis://:hunter2@127.0.0.1:not-a-port/0", "cannot parse it as a storage URL"),
        ("redis+sentinel://:hunter2@127.0.0.1:26379", "'service_name' not provided"),
    ]:
        with pytest.raises(ConfigError) as error:
            create_app(make_settings(database, rate_limit_storage_url=url))
        assert str(error.value) == f"configuration error: RATE_LIMIT_STORAGE_URL: {message}"


def test_trusted_proxies_come_from_the_environment_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,fd00::/8")
    assert [str(network) for network in load_settings(_env_file=None).trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "fd00::/8",
    ]
