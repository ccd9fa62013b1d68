"""D7: a database that goes silent mid-service -- the connections stay open, nothing answers, as
with a frozen (SIGSTOP) or partitioned server -- costs a request a prompt 503, not a hang.

The shared servers must not be stopped, so the silence is a TCP proxy of the test's own in front
of them, which stops passing bytes when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import load_settings
from app.main import create_app
from tests.conftest import PASSWORD, make_settings, new_email, serving
from tests.databases import ScratchDatabase


class FreezableProxy:
    """Forwards TCP to a server until frozen; frozen, it holds every connection open and silent."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.running = asyncio.Event()
        self.running.set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def freeze(self) -> None:
        self.running.clear()

    def thaw(self) -> None:
        self.running.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cancelled when the proxy closes while a connection still waits for it to thaw.
        with contextlib.suppress(asyncio.CancelledError):
            await self.running.wait()  # a new connection to a frozen server: accepted, never answered
        if not self.running.is_set():
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await source.read(65536):
                await self.running.wait()
                sink.write(data)
                await sink.drain()
        sink.close()


@pytest.fixture
async def proxy(backend: ScratchDatabase) -> AsyncIterator[FreezableProxy]:
    async with FreezableProxy(backend.url.host or "127.0.0.1", backend.url.port or 0) as running:
        yield running


@pytest.mark.backends("postgresql", "mariadb")
async def test_a_silent_database_is_a_503_within_the_default_command_timeout(
    backend: ScratchDatabase, proxy: FreezableProxy
) -> None:
    default_timeout = load_settings(_env_file=None).db_command_timeout
    assert default_timeout <= 5, "requests must not wait longer on a silent database than a client does"
    url = backend.url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = create_app(make_settings(backend, database_url=url))
    async with serving(app) as client:
        # Warm: both pools hold connections through the proxy.
        assert (await client.get("/users")).status_code == 200
        created = await client.post("/users", json={"email": new_email(), "name": "Warm", "password": PASSWORD})
        assert created.status_code == 201

        proxy.freeze()

        async def timed(method: str, path: str, payload: object = None) -> tuple[int, float, httpx.Response]:
            started = time.perf_counter()
            response = await client.request(method, path, json=payload)
            return response.status_code, time.perf_counter() - started, response

        results = await asyncio.gather(
            timed("GET", "/users"),
            timed("GET", f"/users/{created.json()['id']}"),
            timed("POST", "/users", {"email": new_email(), "name": "Frozen", "password": PASSWORD}),
        )
        for status, elapsed, response in results:
            assert status == 503, response.text
            assert response.json()["code"] == "database_unavailable"
            assert int(response.headers["retry-after"]) > 0
            assert elapsed < default_timeout + 2, (response.request.method, response.request.url.path, elapsed)

        proxy.thaw()
        # Service resumes by itself once the server speaks again.
        statuses = [(await client.get("/users")).status_code for _ in range(3)]
        assert statuses[-1] == 200, statuses
