"""Debian's PgBouncer in transaction mode in front of the test PostgreSQL, started by the suite.

One PgBouncer per test run, on a free port, with its own configuration under a temporary
directory; it serves every database of that PostgreSQL under the database's own name and is
stopped when the run ends. The `pgbouncer` backend talks to the app through it.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

# The pool the app's transactions share per database: small, as PgBouncer's pools are in
# production, so the suite's load tests actually multiplex client connections onto it.
POOL_SIZE = 20


@dataclass
class PgBouncer:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def url(self, server_url: URL, database: str) -> URL:
        """`server_url`'s database `database`, reached through this PgBouncer."""
        return server_url.set(host=self.host, port=self.port, database=database)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_running: PgBouncer | None = None


def pgbouncer(server_url: URL) -> PgBouncer:
    """The run's PgBouncer in front of `server_url`'s PostgreSQL, started at the first call."""
    global _running  # noqa: PLW0603 -- one PgBouncer per test run
    if _running is None or _running.process.poll() is not None:
        _running = _start(server_url)
        atexit.register(_running.stop)
    return _running


def _start(server_url: URL) -> PgBouncer:
    # Imported here: both import tests.conftest, which imports this module's importer.
    from tests.debian import ensure_command  # noqa: PLC0415
    from tests.servers import free_port  # noqa: PLC0415

    executable = ensure_command("pgbouncer", "pgbouncer")
    directory = Path(tempfile.mkdtemp(prefix="blogapi-pgbouncer-"))
    port = free_port()
    # PgBouncer admits only the users its auth file lists; with trust it checks no password, and
    # logs in to PostgreSQL with the one given here.
    user, password = server_url.username or "postgres", server_url.password or ""
    (directory / "users.txt").write_text(f'"{user}" "{password}"\n')
    (directory / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={server_url.host or '127.0.0.1'} port={server_url.port or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {POOL_SIZE}",
                "max_client_conn = 2000",
                # Clients the suite's drivers send at startup that PgBouncer does not track itself.
                "ignore_startup_parameters = extra_float_digits",
                f"pidfile = {directory / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    command = [str(executable), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root; it drops to the postgres account, which must read its files.
        account = pwd.getpwnam("postgres")
        for path in (directory, *directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command[1:1] = ["-u", "postgres"]
    # Its log goes to logfile (and stderr, which is where a bad configuration is reported).
    with (directory / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)  # noqa: S603
    running = PgBouncer("127.0.0.1", port, process, directory)
    _wait_until_listening(running)
    return running


def _wait_until_listening(running: PgBouncer) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            stderr = (running.directory / "stderr.log").read_text(errors="replace").strip()
            running.stop()
            raise RuntimeError(f"pgbouncer exited with {running.process.returncode}: {stderr[-2000:]}")
        try:
            with socket.create_connection((running.host, running.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    running.stop()
    raise RuntimeError(f"pgbouncer did not listen on port {running.port} within 15 s")
