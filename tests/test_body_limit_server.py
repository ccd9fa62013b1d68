"""D3 on a real server: large uploads, declared or chunked, cost the server no memory.

Eight concurrent 50 MB uploads, anonymous, to routes that need a token or parse the body:
each is answered 413 long before it is sent in full, and the server's resident memory stays
within 20 MiB of where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
from pathlib import Path

import httpx

from tests.servers import Server, served

UPLOAD_BYTES = 50 * 1024 * 1024
CHUNK = b"x" * 65536


def _upload(server: Server, path: str, *, chunked: bool) -> tuple[bytes, int]:
    """Stream a 50 MB body as a client does, watching for the answer between chunks; return the
    status line and how much was sent before it came."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {UPLOAD_BYTES}"
    head = f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as connection:
        connection.sendall(head.encode())
        with contextlib.suppress(OSError):  # the server closes its end once it has answered
            while sent < UPLOAD_BYTES and not select.select([connection], [], [], 0)[0]:
                connection.sendall(piece)
                sent += len(CHUNK)
        return connection.recv(4096).split(b"\r\n", 1)[0], sent


async def test_eight_concurrent_50_mb_uploads_leave_memory_flat(tmp_path: Path) -> None:
    with served(f"sqlite:///{tmp_path / 'blog.db'}", tmp_path / "server.log") as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            # Warm: one body close to the limit, so the buffers a legitimate request needs exist.
            near_limit = {"email": "warm@example.com", "name": "Warm", "password": "password123", "bio": "b" * 5000}
            assert (await client.post("/users", json=near_limit)).status_code == 201
            assert (await client.post("/users", content=b"x" * 1_000_000)).status_code == 422
        before = server.rss_mib()

        uploads = [
            asyncio.to_thread(_upload, server, path, chunked=chunked)
            for path, chunked in [("/posts", False), ("/users", False), ("/posts", True), ("/users", True)] * 2
        ]
        results = await asyncio.gather(*uploads)

        after = server.rss_mib()
        for status_line, sent in results:
            assert status_line.startswith(b"HTTP/1.1 413"), status_line
            assert sent < UPLOAD_BYTES // 2  # answered long before the body was sent
        assert after - before < 20, (before, after)
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/health/ready")).status_code == 200
