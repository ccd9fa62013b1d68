"""The side-by-side benchmark: this app against FastAPI + raw asyncpg (and bare Starlette).

    python3 tasks.py bench              the full run (about 40 minutes; seeds the data set once)
    python3 tasks.py bench --quick      a small data set and short runs, to try the harness

It seeds PostgreSQL (100k users, 1M posts, 2M comments) once, starts every app under uvicorn with
the same settings, checks that they answer the same requests with equal bodies, then loads one
app at a time with wrk: per endpoint and concurrency, a warm-up, then interleaved runs (app,
baseline, starlette, app, baseline, ...), so drifts of this shared machine hit every app alike.
Then the app alone: overload at 512 connections, and a soak with its memory before and after.
Results: bench/results/<date>.json, .md and .png, and the table and chart in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, workload, wrk
from bench.baseline.compare import compare
from bench.servers import APPS, ROOT, Running, serve, server_env
from bench.workload import Endpoint, Scale

FULL = Scale(users=100_000, posts=1_000_000, comments=2_000_000)
QUICK = Scale(users=2_000, posts=20_000, comments=40_000)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/blogapi_bench"


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 tasks.py bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data set, one short run per app")
    parser.add_argument("--database-url", help=f"PostgreSQL database of the benchmark (default {DEFAULT_URL})")
    parser.add_argument("--seconds", type=float, help="length of each timed run (default 15)")
    parser.add_argument("--runs", type=int, help="timed runs per app, endpoint and concurrency (default 3)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before the timed runs")
    parser.add_argument("--concurrency", default="32,128", help="wrk connections, comma-separated")
    parser.add_argument("--endpoints", default="all", help="comma-separated keys (user, posts_first, ...)")
    parser.add_argument("--apps", default="app,baseline,starlette", help="comma-separated: app, baseline, starlette")
    parser.add_argument("--pool-size", type=int, default=10, help="database connections per app")
    parser.add_argument("--soak-seconds", type=float, help="length of the soak (default 300; 0 skips it)")
    parser.add_argument("--no-overload", action="store_true", help="skip the 512-connection run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def _postgres_version(url: str) -> str:
    completed = subprocess.run(
        ["psql", url, "-Atc", "SHOW server_version"], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip().split()[0] if completed.returncode == 0 and completed.stdout.strip() else "?"


def _drain(server: Running, limit: float = 120.0) -> None:
    """Wait until the server is idle: requests wrk gave up on may still be running, and must not
    be billed to the next run (or the next app)."""
    deadline = time.monotonic() + limit
    last = server.cpu_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.cpu_seconds()
        if now - last < 0.02:
            return
        last = now


def _measure(binary: str, server: Running, endpoint: Endpoint, *, connections: int, seconds: float) -> dict[str, Any]:
    cpu_before = server.cpu_seconds()
    result = wrk.run(binary, server.base_url, endpoint.requests, connections=connections, seconds=seconds)
    cpu = server.cpu_seconds() - cpu_before
    _drain(server)
    if result.unexpected:
        # A 4xx means the request list is wrong (an expired token, a missing row), not that the app
        # is slow: such a run measures nothing, so nothing is recorded.
        raise SystemExit(f"{endpoint.title}: unexpected statuses {result.statuses} at c={connections}")
    return {
        # Only answered requests count: a fast 503 is back-pressure, not throughput.
        "rps": result.ok / result.seconds if result.seconds else 0.0,
        "answers_per_s": result.rps,
        "requests": result.requests,
        "seconds": result.seconds,
        "p50_ms": result.p50_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "max_ms": result.max_ms,
        "statuses": {str(status): n for status, n in sorted(result.statuses.items())},
        "non_2xx": sum(n for status, n in result.statuses.items() if not 200 <= status < 300),
        "socket_errors": result.socket_errors,
        "timeouts": result.timeouts,
        # CPU time of the server per request: less noisy than throughput on a shared machine.
        "cpu_ms_per_request": 1000 * cpu / result.requests if result.requests else 0.0,
    }


def _check_equal(servers: dict[str, Running], endpoints: list[Endpoint]) -> None:
    """Every app must answer each read with the body this app gives, before anything is timed."""
    paths = [request.path for e in endpoints if e.kind == "read" for request in e.requests[:25]]
    for name, server in servers.items():
        if name == "app":
            continue
        mismatches = asyncio.run(compare(servers["app"].base_url, server.base_url, paths))
        if mismatches:
            raise SystemExit(f"{name} answers differently from the app:\n" + "\n".join(mismatches[:10]))
        print(f"{name}: equal bodies for {len(paths)} requests", flush=True)


def _soak(binary: str, server: Running, endpoints: list[Endpoint], seconds: float) -> dict[str, Any]:
    """Mixed load for `seconds`; the app's RSS once warm and at the end."""
    mixed = Endpoint("soak", "mixed", "read", [])
    by_key = {e.key: e for e in endpoints}
    # Mostly reads, some writes: roughly what a blog serves.
    for key, share in (("user", 6), ("posts_first", 3), ("comments", 6), ("users_posts", 2), ("add_view", 2)):
        if key in by_key:
            mixed.requests.extend(by_key[key].requests[: share * 50])
    if "create_post" in by_key:
        mixed.requests.extend(by_key["create_post"].requests * 10)
    warmup = min(30.0, seconds / 5)
    connections = 64
    _measure(binary, server, mixed, connections=connections, seconds=warmup)
    rss_warm = server.rss_mib()
    samples = [rss_warm]
    remaining, total, non_2xx = seconds, 0, 0
    while remaining > 0:
        chunk = min(30.0, remaining)
        run = _measure(binary, server, mixed, connections=connections, seconds=chunk)
        total += run["requests"]
        non_2xx += run["non_2xx"]
        samples.append(server.rss_mib())
        remaining -= chunk
    return {
        "seconds": seconds,
        "connections": connections,
        "requests": total,
        "non_2xx": non_2xx,
        "rss_after_warmup_mib": rss_warm,
        "rss_end_mib": samples[-1],
        "rss_samples_mib": samples,
        "rss_growth_percent": 100 * (samples[-1] - rss_warm) / rss_warm,
    }


def main() -> None:
    args = _arguments()
    scale = QUICK if args.quick else FULL
    url = args.database_url or (DEFAULT_URL + "_quick" if args.quick else DEFAULT_URL)
    seconds = args.seconds or (2.0 if args.quick else 15.0)
    runs = args.runs or (1 if args.quick else 3)
    soak_seconds = args.soak_seconds if args.soak_seconds is not None else (10.0 if args.quick else 300.0)
    levels = [int(c) for c in args.concurrency.split(",")]
    names = [name.strip() for name in args.apps.split(",")]
    binary = wrk.ensure_installed()
    env = server_env(url, secrets.token_urlsafe(48), args.pool_size)
    workload.prepare(url, scale, env)

    logs = args.output / "logs"  # the servers' own output, ignored by git
    logs.mkdir(parents=True, exist_ok=True)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    results: dict[str, Any] = {
        "date": date,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": _postgres_version(url)},
        "scale": {"users": scale.users, "posts": scale.posts, "comments": scale.comments},
        "settings": {"pool_size": args.pool_size, "runs": runs, "seconds": seconds, "warmup": args.warmup},
        "apps": {name: APPS[name].description for name in names},
        "endpoints": {},
    }
    with ExitStack() as stack:
        # Every server is up for the whole run (so their bodies can be compared side by side), but
        # only one is under load at any moment; an idle server costs nothing.
        servers = {
            name: stack.enter_context(serve(APPS[name], port=8600 + i, env=env, log=logs / f"{name}.log"))
            for i, name in enumerate(names)
        }
        chosen = workload.endpoints(url, scale, servers["app"].base_url)
        if args.endpoints != "all":
            keys = set(args.endpoints.split(","))
            chosen = [e for e in chosen if e.key in keys]
        _check_equal(servers, chosen)
        for endpoint in chosen:
            entry: dict[str, Any] = {"title": endpoint.title, "kind": endpoint.kind, "concurrency": {}}
            results["endpoints"][endpoint.key] = entry
            for level in levels:
                per_app: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
                for server in servers.values():
                    _measure(binary, server, endpoint, connections=level, seconds=args.warmup)
                for _ in range(runs):
                    for name, server in servers.items():
                        per_app[name].append(_measure(binary, server, endpoint, connections=level, seconds=seconds))
                entry["concurrency"][level] = per_app
                line = ", ".join(f"{n} {report.median_run(r)['rps']:,.0f}/s" for n, r in per_app.items())
                print(f"{endpoint.title:<40} c={level:<4} {line}", flush=True)
        app = servers["app"]
        if not args.no_overload:
            results["overload"] = []
            for endpoint in chosen:
                if endpoint.key in {"user", "posts_first", "add_view"}:
                    run = _measure(binary, app, endpoint, connections=512, seconds=seconds)
                    results["overload"].append({"title": endpoint.title, **run})
                    print(f"overload {endpoint.title}: {run['rps']:,.0f}/s statuses {run['statuses']}", flush=True)
        if soak_seconds > 0:
            started = time.monotonic()
            results["soak"] = _soak(binary, app, chosen, soak_seconds)
            print(f"soak: {results['soak']} ({time.monotonic() - started:.0f} s)", flush=True)
    # A quick run only tries the harness: it keeps out of the published results.
    output = args.output / "quick" if args.quick else args.output
    stem = report.write(results, output, None if args.quick else ROOT / "BENCHMARKS.md")
    print(report.markdown(results))
    print(f"written: {stem}.json, .md, .png")


if __name__ == "__main__":
    main()
