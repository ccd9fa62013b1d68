"""A PostgreSQL primary and a streaming replica of it, made by the test run on free ports.

`initdb` a primary under a temporary directory, `pg_basebackup -R` a standby from it, both
started with `pg_ctl` and stopped (and their files removed) when the block ends. The shared
test servers are never touched. As root (the project's machines) every command runs as the
`postgres` account, which PostgreSQL requires.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

DATABASE = "blog"


def _bin_directory() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parent.parent.name))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return found[-1].parent


@dataclass
class Cluster:
    directory: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def ctl(self, *args: str) -> None:
        log = self.directory.parent / f"{self.directory.name}.log"
        _run(self.bin / "pg_ctl", "-D", self.directory, "-l", log, "-w", "-t", "60", *args)

    def start(self) -> None:
        self.ctl("start")

    def stop(self) -> None:
        self.ctl("stop", "-m", "immediate")

    def configure(self, **settings: str) -> None:
        """Settings for the next start or reload (postgresql.auto.conf, as ALTER SYSTEM writes)."""
        with (self.directory / "postgresql.auto.conf").open("a") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    def reload(self) -> None:
        self.ctl("reload")


@dataclass
class Replication:
    primary: Cluster
    replica: Cluster


@contextmanager
def primary_and_replica(*, apply_delay_ms: int = 0) -> Iterator[Replication]:
    """A primary holding an empty database `blog`, and a hot standby streaming from it."""
    bin_directory = _bin_directory()
    root = Path(tempfile.mkdtemp(prefix="blogapi-replication-"))
    _own(root)
    primary = Cluster(root / "primary", free_port(), bin_directory)
    replica = Cluster(root / "replica", free_port(), bin_directory)
    try:
        _run(bin_directory / "initdb", "-D", primary.directory, "-U", "postgres", "--auth=trust", "--no-sync")
        # Durability is not what these tests are about; speed is welcome.
        primary.configure(
            port=str(primary.port),
            listen_addresses="127.0.0.1",
            unix_socket_directories=str(root),
            fsync="off",
            synchronous_commit="off",
            full_page_writes="off",
            shared_buffers="32MB",
            max_connections="100",
        )
        primary.start()
        _run(bin_directory / "createdb", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", DATABASE)
        _run(
            bin_directory / "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", replica.directory, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast"),
        )
        replica.configure(port=str(replica.port), recovery_min_apply_delay=f"{apply_delay_ms}ms")
        replica.start()
        yield Replication(primary, replica)
    finally:
        for cluster in (replica, primary):
            if (cluster.directory / "postmaster.pid").exists():
                with suppress(subprocess.CalledProcessError):
                    cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(path, account.pw_uid, account.pw_gid)


def _run(*command: str | Path) -> None:
    completed = subprocess.run(  # noqa: S603 -- PostgreSQL's own tools, our arguments
        [*_as_postgres(), *map(str, command)], capture_output=True, text=True, check=False, timeout=120
    )
    if completed.returncode != 0:
        raise subprocess.CalledProcessError(completed.returncode, command, completed.stdout, completed.stderr)
