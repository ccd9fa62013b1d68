"""Issue 13 through real server processes: what an operator's log collector and Prometheus read.

The app runs as it is deployed -- `uvicorn app.main:app` as an operator types it (uvicorn's own
access log not switched off), and `python -m app serve --workers 2` -- and the tests read what the
processes write: every line one JSON object with a UTC timestamp, one access line per request
with its id and route template, `/metrics` summed exactly over two workers, and an outage of 300
failed requests logged in a handful of lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.metrics import SAMPLE_INTERVAL
from app.migrations import head_revision
from tests.conftest import SECRET_KEY
from tests.databases import ScratchDatabase
from tests.servers import ROOT, free_port, served

T = TypeVar("T")

_LINE_KEYS = {"timestamp", "level", "logger", "message"}
_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# A user id no test creates: its requests are 404s, and the number must never reach the log.
_MISSING_USER = 987654
# Several seconds of slack on every wait: a benchmark may be loading the machine meanwhile.
_STARTUP_SECONDS = 90.0


# --- reading what the processes write ------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a log, each one JSON object with the keys every line has."""
    assert text, "the log is empty"
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            head = "\n".join(text.splitlines()[:40])
            pytest.fail(f"line {number} of the log is not JSON: {line!r}\n--- the log begins:\n{head}")
        assert isinstance(record, dict), line
        assert record.keys() >= _LINE_KEYS, line
        assert record["level"] in _LEVELS, line
        records.append(record)
    return records


def assert_utc_timestamps(records: list[dict[str, Any]], *, since: datetime) -> None:
    """ISO 8601 in UTC, and the right instant: the servers run with TZ set far from UTC, so a
    local time written with a `Z` is hours off."""
    until = datetime.now(UTC)
    for record in records:
        stamp: str = record["timestamp"]
        assert stamp.endswith("Z"), record
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert moment.utcoffset() == timedelta(0), record
        assert since - timedelta(seconds=5) <= moment <= until + timedelta(seconds=5), (record, since, until)


def access_lines(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [record for record in records if record["logger"] == "app.access"]


def scrape(url: str) -> list[Sample]:
    """One scrape over a connection of its own (so with several workers, any of them may answer)."""
    response = httpx.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def sample_value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one series with exactly these labels, None when there is none."""
    values = [sample.value for sample in samples if sample.name == name and sample.labels == labels]
    assert len(values) <= 1, (name, labels, values)
    return values[0] if values else None


def wait_for(condition: Callable[[], T | None], *, seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while True:
        if (result := condition()) is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:g} s")
        time.sleep(0.1)


# --- running a server the way an operator does ---------------------------------------------------


def environment(database_url: str, **env: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "ENVIRONMENT": "production", **env}


@contextmanager
def running(
    command: list[str], *, env: dict[str, str], stdout: Path, stderr: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` in the project root until the block ends; then stopped with SIGINT, as by Ctrl-C."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)  # noqa: S603
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    workers = children(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()


def children(pid: int) -> list[int]:
    return [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]


def wait_until_live(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def live() -> bool | None:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health/live", timeout=2).status_code == 200 or None
        except httpx.TransportError:
            return None

    wait_for(live, seconds=_STARTUP_SECONDS, what="the server answering /health/live")


# --- 1. log lines, request ids and the access log under plain uvicorn ----------------------------


def test_plain_uvicorn_writes_one_json_object_per_line_and_one_access_line_per_request(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = environment(
        f"sqlite:///{tmp_path / 'blog.db'}",
        # JSON because it was asked for: development's own default is the console format.
        ENVIRONMENT="development",
        LOG_FORMAT="json",
        # Local time 5:45 ahead of UTC (POSIX TZ: the offset is west of Greenwich).
        TZ="XXX-05:45",
        # Every statement is "slow": a line logged while serving a request, besides its access line.
        DB_SLOW_QUERY_MS="0.001",
    )
    since = datetime.now(UTC)
    # Exactly the operator's command: uvicorn's own access log is on unless the app turns it off.
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    sent: list[str] = []  # the X-Request-ID of every response to GET /users/{user_id}
    with running(command, env=env, stdout=log, stderr=log) as process:
        wait_until_live(url, process, log)
        with httpx.Client(base_url=url, timeout=30) as client:
            supplied = client.get(f"/users/{_MISSING_USER}", headers={"X-Request-ID": "test-abc.1:2"})
            assert supplied.status_code == 404, supplied.text
            assert supplied.headers["X-Request-ID"] == "test-abc.1:2"
            sent.append("test-abc.1:2")

            longest = "a" * 128
            assert (
                client.get(f"/users/{_MISSING_USER}", headers={"X-Request-ID": longest}).headers["X-Request-ID"]
                == longest
            )
            sent.append(longest)

            replaced: list[str] = []
            for bad in [b"has space", b"a" * 129, "caf\u00e9".encode(), b"", b"semi;colon"]:
                response = client.get(f"/users/{_MISSING_USER}", headers={b"X-Request-ID": bad})
                assert response.status_code == 404, response.text
                generated = response.headers["X-Request-ID"]
                assert str(uuid.UUID(generated)) == generated, (bad, generated)
                replaced.append(generated)
            assert len(set(replaced)) == len(replaced), replaced
            sent.extend(replaced)

            without = client.get(f"/users/{_MISSING_USER}")
            assert str(uuid.UUID(without.headers["X-Request-ID"])) == without.headers["X-Request-ID"]
            sent.append(without.headers["X-Request-ID"])

            # Probes and scrapes get an id too, but no INFO line.
            assert client.get("/health/live", headers={"X-Request-ID": "probe-1"}).headers["X-Request-ID"] == "probe-1"
            assert client.get("/health/ready", headers={"X-Request-ID": "probe-2"}).status_code == 200
            assert client.get("/metrics", headers={"X-Request-ID": "scrape-1"}).status_code == 200
    assert process.returncode == 0, log.read_text()

    text = log.read_text()
    records = json_lines(text)
    assert_utc_timestamps(records, since=since)
    assert [record["message"] for record in records if record["logger"] == "uvicorn.error"][-1].startswith(
        "Finished server process"
    ), "the lines of the shutdown are in the log too"

    # One line per request, the app's; uvicorn's own never (it would name the raw path).
    assert not [record for record in records if record["logger"].startswith("uvicorn.access")], text
    assert str(_MISSING_USER) not in text  # neither the raw path nor the statement's parameter
    accesses = access_lines(records)
    assert [line["request_id"] for line in accesses] == sent, text
    for line in accesses:
        assert line["level"] == "INFO", line
        assert line["message"] == "request", line
        assert line["method"] == "GET", line
        assert line["route"] == "/users/{user_id}", line
        assert line["status"] == 404, line
        assert isinstance(line["duration_ms"], int | float), line
        assert 0 < line["duration_ms"] < 30_000, line
        assert line["client"] == "127.0.0.1", line

    # Every line written while serving a request carries its id: here its slow statements too.
    own = [record for record in records if record.get("request_id") == "test-abc.1:2"]
    statements = [record for record in own if record["logger"] == "app.database"]
    assert statements, own
    for record in statements:
        assert record["message"] == "slow statement", record
        assert record["level"] == "WARNING", record
        assert record["statement"].lstrip().upper().startswith("SELECT"), record
    assert {record["logger"] for record in own} == {"app.database", "app.access"}, own

    # The probes' and the scrape's access lines are DEBUG, under this INFO log. (/health/ready
    # reads the database: its slow statements are there, under its id.)
    assert not [line for line in accesses if line["request_id"] in {"probe-1", "probe-2", "scrape-1"}], text
    slow_statements_of = {record.get("request_id") for record in records if record["logger"] == "app.database"}
    assert {"test-abc.1:2", "probe-2"} <= slow_statements_of, slow_statements_of


def test_development_logs_readable_lines_with_request_ids_and_no_parameters_even_at_debug(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    # No LOG_FORMAT: development's default. At DEBUG, the probes' access lines are written too.
    with served(f"sqlite:///{tmp_path / 'blog.db'}", log, ENVIRONMENT="development", LOG_LEVEL="DEBUG") as server:
        headers = {"X-Request-ID": "console-id-1"}
        assert httpx.get(f"{server.url}/users/{_MISSING_USER}", headers=headers, timeout=30).status_code == 404
        assert (
            httpx.get(f"{server.url}/health/live", headers={"X-Request-ID": "probe-1"}, timeout=30).status_code == 200
        )

    text = log.read_text()
    assert "\x1b[" not in text, "coloured, though the log is no terminal"
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    lines = text.splitlines()
    for line in lines:
        assert re.match(stamp + r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+  \S", line), line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    access = [line for line in lines if " app.access " in line and "request_id=console-id-1" in line]
    assert len(access) == 1, text
    assert re.match(stamp + r"INFO +app\.access  request ", access[0]), access[0]
    for field in ("method=GET", "route=/users/{user_id}", "status=404", "client=127.0.0.1", "duration_ms="):
        assert f" {field}" in access[0], (field, access[0])
    probe = [line for line in lines if " app.access " in line and "request_id=probe-1" in line]
    assert len(probe) == 1, text
    assert re.match(stamp + r"DEBUG +app\.access  request .*route=/health/live", probe[0]), probe[0]
    # Not even at DEBUG does a statement's parameter reach the log (nor, so, a hash or an email).
    assert not [line for line in lines if str(_MISSING_USER) in line]


# --- 2. two workers' metrics add up --------------------------------------------------------------


def _started_workers(log: str) -> list[int]:
    """The workers' pids, as uvicorn logs them (read leniently: the log's format is checked apart)."""
    return [int(pid) for pid in re.findall(r'"message":\s*"Started server process \[(\d+)\]"', log)]


def _parent(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..." -- comm may hold spaces, so split after it.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _worker_counts(directory: Path, pid: int, route: str) -> float:
    """Requests to `route` one worker counted, from its own file in the multi-process directory."""
    files = [str(path) for path in directory.glob(f"counter_{pid}.db")]
    metrics = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return float(
        sum(
            sample.value
            for metric in metrics
            for sample in metric.samples
            if sample.name == "http_requests_total" and sample.labels.get("route") == route
        )
    )


def _counted_by_workers(directory: Path, workers: list[int], route: str, expected: int) -> list[float] | None:
    """Each worker's count of `route`, once they add up to `expected`."""
    counts = [_worker_counts(directory, pid, route) for pid in workers]
    return counts if sum(counts) == expected else None


def _get(url: str) -> int:
    """A request over a new connection: each is accepted by whichever worker is first."""
    return httpx.get(url, timeout=30).status_code


@pytest.mark.backends("sqlite", "postgresql")
def test_serve_with_two_workers_sums_their_metrics_and_removes_its_directory(
    backend: ScratchDatabase, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    command = [sys.executable, "-m", "app", "serve", "--workers", "2", "--port", str(port)]
    users_route, user_url = "/users/{user_id}", f"{url}/users/{_MISSING_USER}"
    with (
        running(command, env=environment(backend.url_string), stdout=stdout, stderr=stderr) as process,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        wait_until_live(url, process, stderr)
        workers = wait_for(
            lambda: pids if len(pids := _started_workers(stderr.read_text())) == 2 else None,
            seconds=_STARTUP_SECONDS,
            what="two workers started",
        )
        assert [_parent(pid) for pid in workers] == [process.pid] * 2, workers
        # The directory `serve` made for this run, as its workers were given it.
        directories = {_environ(pid).get("PROMETHEUS_MULTIPROC_DIR") for pid in workers}
        assert len(directories) == 1, directories
        (name,) = directories
        assert name is not None
        directory = Path(name)
        assert directory.parent == Path(tempfile.gettempdir()), directory
        assert directory.name.startswith("blogapi-metrics-"), directory
        assert directory.is_dir()

        # Rounds of concurrent requests on new connections, until both workers have had some.
        sent_users = sent_posts = 0
        for _ in range(10):
            statuses = list(pool.map(_get, [user_url] * 20 + [f"{url}/posts"] * 4))
            assert statuses == [404] * 20 + [200] * 4, statuses
            sent_users, sent_posts = sent_users + 20, sent_posts + 4

            counts = wait_for(
                partial(_counted_by_workers, directory, workers, users_route, sent_users),
                seconds=10,
                what=f"the workers' files counting {sent_users} requests",
            )
            if sent_users >= 40 and all(counts):
                break
        assert all(counts), f"one worker answered all {sent_users} requests: {counts}"

        # Every scrape, whichever worker answers it, holds the sum: exactly what was sent.
        def users_counted() -> float | None:
            value = sample_value(scrape(url), "http_requests_total", method="GET", route=users_route, status="404")
            assert value is None or value <= sent_users, (value, sent_users)
            return value if value == sent_users else None

        wait_for(users_counted, seconds=10, what=f"a scrape counting {sent_users} requests")
        scrapes = 0
        while scrapes < 6 or not all(_worker_counts(directory, pid, "/metrics") for pid in workers):
            assert scrapes < 60, "one worker answered every scrape"
            samples = scrape(url)
            scrapes += 1
            assert sample_value(samples, "http_requests_total", method="GET", route=users_route, status="404") == (
                sent_users
            )
            assert sample_value(samples, "http_request_duration_seconds_count", method="GET", route=users_route) == (
                sent_users
            )
            assert sample_value(samples, "http_requests_total", method="GET", route="/posts", status="200") == (
                sent_posts
            )

            info = [sample for sample in samples if sample.name == "app_info"]
            assert len(info) == 1, info
            assert info[0].value == 1
            assert info[0].labels.keys() == {"version", "schema_revision"}, info
            assert info[0].labels["schema_revision"] == head_revision()
            assert info[0].labels["version"]

            # The worker not answering a scrape shows its pools as it sampled them last, up to
            # SAMPLE_INTERVAL ago, maybe mid-request: wait for a sample taken at rest.
            def pools_at_rest() -> list[Sample] | None:
                latest = scrape(url)
                busy = [
                    sample_value(latest, "db_pool_connections", pool=pool_name, state=state)
                    for pool_name in ("autocommit", "transaction")
                    for state in ("in_use", "overflow")
                ]
                return latest if all(value == 0 for value in busy) else None

            samples = wait_for(pools_at_rest, seconds=5 * SAMPLE_INTERVAL, what="the pools at rest in a scrape")
            for pool_name in ("autocommit", "transaction"):
                for state in ("in_use", "idle", "overflow"):
                    value = sample_value(samples, "db_pool_connections", pool=pool_name, state=state)
                    assert value is not None, (pool_name, state)
                    # Nothing runs between scrapes, and a scrape touches no database.
                    assert value == 0 or state == "idle", (pool_name, state, value)
                assert sample_value(samples, "db_pool_waiters", pool=pool_name) == 0
            # Each worker keeps the connection its reads used: the gauges add up the two.
            assert (sample_value(samples, "db_pool_connections", pool="autocommit", state="idle") or 0) >= 2
            selects = sample_value(samples, "db_statement_duration_seconds_count", operation="select")
            assert selects is not None
            assert selects >= sent_users + sent_posts
    assert process.returncode == 0, stderr.read_text()

    assert not directory.exists(), f"{directory} outlived the server: {sorted(os.listdir(directory))}"
    # The CLI's one line about the migration it did not need, then nothing but log lines.
    assert stdout.read_text() == f"already at {head_revision()}\n"
    assert len(_started_workers(stderr.read_text())) == 2, "no worker was restarted"
    records = json_lines(stderr.read_text())
    assert not [record for record in records if record["level"] in {"ERROR", "CRITICAL"}], records


# --- 3. an outage is a handful of lines ----------------------------------------------------------


def test_an_outage_of_300_requests_is_a_handful_of_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    requests = 300
    # A PostgreSQL server nobody runs: every connection attempt is refused.
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/blogapi"
    with (
        served(nowhere, log, MIGRATE_ON_STARTUP="false") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
        ThreadPoolExecutor(max_workers=10) as pool,
    ):
        responses = list(pool.map(lambda _: client.get("/users/1"), range(requests)))
        for response in responses:
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "database_unavailable", response.text
            assert "Retry-After" in response.headers
        assert len({response.headers["X-Request-ID"] for response in responses}) == requests

        samples = scrape(server.url)
        assert sample_value(samples, "db_errors_total", reason="unavailable") == requests, [
            sample for sample in samples if sample.name == "db_errors_total"
        ]
        assert not [s for s in samples if s.name == "db_errors_total" and s.labels["reason"] != "unavailable"]
        # Started without reaching the database: the revision it runs against is not known.
        info = [sample for sample in samples if sample.name == "app_info"]
        assert [(sample.labels["schema_revision"], sample.value) for sample in info] == [("unknown", 1)], info

        def counted() -> float | None:
            value = sample_value(
                scrape(server.url), "http_requests_total", method="GET", route="/users/{user_id}", status="503"
            )
            return value if value == requests else None

        wait_for(counted, seconds=10, what=f"a scrape counting {requests} 503s")

    text = log.read_text()
    records = json_lines(text)  # production's default format
    assert "Traceback" not in text
    assert not [record for record in records if "exception" in record], text
    accesses = [line for line in access_lines(records) if line["route"] == "/users/{user_id}"]
    assert len(accesses) == requests, len(accesses)
    assert {line["status"] for line in accesses} == {503}
    assert {line["request_id"] for line in accesses} == {response.headers["X-Request-ID"] for response in responses}

    outage = [record for record in records if record["message"].startswith("database unavailable")]
    assert 1 <= len(outage) <= 5, text
    for record in outage:
        assert record["level"] == "WARNING", record
        assert record["reason"] == "unavailable", record
    # The first is logged by the request that met the outage, under its id.
    assert outage[0]["request_id"] in {line["request_id"] for line in accesses}, outage[0]
    # Everything but the access lines: startup, the outage, shutdown -- not one line per failure.
    others = [record for record in records if record["logger"] != "app.access"]
    assert len(others) <= 15, text
