"""The side-by-side benchmark: this app against FastAPI + raw asyncpg (and bare Starlette).

    python3 tasks.py bench              the full run (about 40 minutes; seeds the data set once)
    python3 tasks.py bench --quick      a small data set and short runs, to try the harness

It seeds PostgreSQL (100k users, 1M posts, 2M comments) once, starts every app under uvicorn with
the same settings, checks that they answer the same requests with equal bodies, then loads one
app at a time with wrk: per endpoint and concurrency, a warm-up, then interleaved runs (app,
baseline, starlette, app, baseline, ...), so drifts of this shared machine hit every app alike.
Then the app alone: overload at 512 connections, and a soak with its memory before and after.
Results: bench/results/<date>.json, .md and .png, and the table and chart in BENCHMARKS.md.

    python3 tasks.py bench --apps app --compare HEAD~1    this checkout against an older one (A/B)

serves the older commit beside the app, interleaved like any other app, and reports app / ref.

    python3 tasks.py bench --apps app --compare 54a755c --env LOG_FORMAT=json --env LOG_LEVEL=INFO

`--env` gives every server (app, ref, baselines alike) an extra variable; a checkout that does not
know it ignores it. The servers' output (with it any access log) goes to bench/results/logs/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import secrets
import signal
import subprocess
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import checkout, instructions, report, workload, wrk
from bench.baseline.compare import compare
from bench.servers import APPS, ROOT, AppUnderTest, Running, checkout_app, loaded_from, serve, server_env
from bench.workload import Endpoint, Scale

FULL = Scale(users=100_000, posts=1_000_000, comments=2_000_000)
QUICK = Scale(users=2_000, posts=20_000, comments=40_000)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/blogapi_bench"


def _variable(item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{item!r} is not NAME=VALUE")
    return name, value


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
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also serve this git ref (a commit, HEAD~3, main) as the app named 'ref', interleaved like the "
        "others, and report app / ref per endpoint (throughput, CPU per request, p99) in "
        "bench/results/<date>-ab-<sha>.{json,md}, leaving BENCHMARKS.md alone. The ref is checked out in a "
        "temporary git worktree (removed at the end) and served from there with this .venv, so with the same "
        "dependency versions; migrations it lacks are copied in from this checkout, so that it starts on the "
        "schema the current code migrated the database to. A checkout with app/serving.py (app and ref alike) is "
        "served as app.serving:served_app (uvicorn --factory: create_app plus the process's GC tuning), an older "
        "one as app.main:app (whose create_app did that tuning); each server is checked to load its module from "
        "its own checkout. Needs 'app' in --apps",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=_variable,
        metavar="NAME=VALUE",
        help="an extra variable for every server (not the seeding); repeatable, recorded in the results",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        nargs="+",
        metavar="NAME [NAME=VALUE",
        help="also serve this checkout's app as NAME with these variables over the shared ones (e.g. "
        "`--variant pgbouncer DATABASE_URL=postgresql://...:6432/db DB_PGBOUNCER=true`), interleaved like the "
        "others, and report NAME / app per endpoint (throughput, CPU per request, p99) in "
        "bench/results/<date>-variants.{json,md}, leaving BENCHMARKS.md alone; repeatable",
    )
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="N",
        help="instead of timed runs, count the instructions of N requests per app and endpoint under callgrind, "
        "at the first --concurrency level (bench/instructions.py): a figure the machine's other load cannot move; "
        "written to bench/results/<date>[-variants|-ab-<sha>]-instructions.{json,md}",
    )
    parser.add_argument("--pool-size", type=int, default=10, help="database connections per app")
    parser.add_argument("--soak-seconds", type=float, help="length of the soak (default 300; 0 skips it)")
    parser.add_argument("--no-overload", action="store_true", help="skip the 512-connection run")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args()


def _variant(words: list[str]) -> AppUnderTest:
    name, *assignments = words
    if name in APPS or name == "ref" or not name.isidentifier():
        raise SystemExit(f"--variant: {name!r} must be a new name (not {', '.join([*APPS, 'ref'])})")
    try:
        env = tuple(_variable(item) for item in assignments)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"--variant {name}: {exc}") from None
    described = ", ".join(f"{key}={value}" for key, value in env) or "nothing changed"
    return dataclasses.replace(APPS["app"], name=name, description=f"the app with {described}", env=env)


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
        raise SystemExit(
            f"{server.app.name}: {endpoint.title}: unexpected statuses {result.statuses} at c={connections}"
        )
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


def _check_ref(servers: dict[str, Running], endpoints: list[Endpoint]) -> list[str]:
    """The ref's answers that differ from the app's: listed, not refused, since an A/B run may well
    measure a change of behaviour; but then the two apps do not do the same work, and the report says so."""
    paths = [request.path for e in endpoints if e.kind == "read" for request in e.requests[:25]]
    mismatches = asyncio.run(compare(servers["app"].base_url, servers["ref"].base_url, paths))
    if mismatches:
        print(f"ref answers differently from the app ({len(mismatches)} differences):", flush=True)
        print("\n".join(mismatches[:10]), flush=True)
    else:
        print(f"ref: equal bodies for {len(paths)} requests", flush=True)
    return mismatches


def _stop(signum: int, _frame: FrameType | None) -> None:
    # As Ctrl-C does: the servers are stopped and the ref's worktree removed on the way out.
    raise SystemExit(128 + signum)


def _ref_app(stack: ExitStack, ref: str, results: dict[str, Any]) -> AppUnderTest:
    """The app of `ref`, checked out until `stack` closes; what was compared goes into `results`."""
    checked_out = stack.enter_context(checkout.worktree(ref))
    app = checkout_app("ref", checked_out.path, f"{ref} ({checked_out.short}): {checked_out.subject}")
    results["apps"]["ref"] = app.description
    results["compare"] = {
        "app": checkout.describe_current(),
        "ref": ref,
        "commit": checked_out.commit,
        "subject": checked_out.subject,
        "shared_revisions": list(checked_out.shared_revisions),
    }
    if checked_out.shared_revisions:
        print(f"ref: migrations copied in from this checkout: {', '.join(checked_out.shared_revisions)}", flush=True)
    return app


def _start(
    stack: ExitStack, apps: list[AppUnderTest], env: dict[str, str], logs: Path, results: dict[str, Any]
) -> dict[str, Running]:
    """Every app served until `stack` closes, each checked to run its own checkout's code."""
    # Every server is up for the whole run (so their bodies can be compared side by side), but
    # only one is under load at any moment; an idle server costs nothing.
    servers = {
        app.name: stack.enter_context(serve(app, port=8600 + i, env=env, log=logs / f"{app.name}.log"))
        for i, app in enumerate(apps)
    }
    results["servers"] = {}
    for name, server in servers.items():
        origin = loaded_from(server)
        results["servers"][name] = {"target": server.app.target, "factory": server.app.factory, "file": str(origin)}
        print(f"{name}: {server.app.target}{' (factory)' if server.app.factory else ''} from {origin}", flush=True)
    return servers


def _interleaved(
    binary: str,
    servers: dict[str, Running],
    endpoint: Endpoint,
    *,
    level: int,
    runs: int,
    seconds: float,
    warmup: float,
) -> dict[str, list[dict[str, Any]]]:
    """A warm-up of every app, then `runs` rounds of one run per app (app, baseline, ..., app, ...)."""
    per_app: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for server in servers.values():
        _measure(binary, server, endpoint, connections=level, seconds=warmup)
    for _ in range(runs):
        for name, server in servers.items():
            per_app[name].append(_measure(binary, server, endpoint, connections=level, seconds=seconds))
    line = ", ".join(f"{n} {report.median_run(r)['rps']:,.0f}/s" for n, r in per_app.items())
    print(f"{endpoint.title:<40} c={level:<4} {line}", flush=True)
    return per_app


def _timed(
    binary: str,
    servers: dict[str, Running],
    chosen: list[Endpoint],
    levels: list[int],
    *,
    runs: int,
    seconds: float,
    warmup: float,
    results: dict[str, Any],
) -> None:
    """Every endpoint at every concurrency level, the apps interleaved."""
    for endpoint in chosen:
        entry: dict[str, Any] = {"title": endpoint.title, "kind": endpoint.kind, "concurrency": {}}
        results["endpoints"][endpoint.key] = entry
        for level in levels:
            entry["concurrency"][level] = _interleaved(
                binary, servers, endpoint, level=level, runs=runs, seconds=seconds, warmup=warmup
            )


def _count_instructions(
    apps: list[AppUnderTest], chosen: list[Endpoint], *, env: dict[str, str], logs: Path, requests: int, level: int
) -> dict[str, Any]:
    """Each app's instructions per request of each endpoint, served one at a time under callgrind."""
    counted: dict[str, Any] = {"requests": requests, "concurrency": level, "endpoints": {}}
    for endpoint in chosen:
        per_app = counted["endpoints"][endpoint.title] = {}
        for app in apps:
            per_app[app.name] = instructions.count(
                app,
                endpoint,
                env=env,
                port=8690,
                log=logs / f"{app.name}.callgrind.log",
                requests=requests,
                concurrency=level,
            )
            figures = per_app[app.name]
            print(
                f"{endpoint.title:<40} {app.name}: {figures['instructions']:,.0f} instructions, "
                f"{figures['cycles']:,.0f} estimated cycles per request",
                flush=True,
            )
    return counted


def _app_alone(
    binary: str,
    app: Running,
    endpoints: list[Endpoint],
    *,
    seconds: float,
    overload: bool,
    soak: float,
    results: dict[str, Any],
) -> None:
    """Overload (512 connections) and the soak, the app alone."""
    if overload:
        results["overload"] = []
        for endpoint in endpoints:
            if endpoint.key in {"user", "posts_first", "add_view"}:
                run = _measure(binary, app, endpoint, connections=512, seconds=seconds)
                results["overload"].append({"title": endpoint.title, **run})
                print(f"overload {endpoint.title}: {run['rps']:,.0f}/s statuses {run['statuses']}", flush=True)
    if soak > 0:
        started = time.monotonic()
        results["soak"] = _soak(binary, app, endpoints, soak)
        print(f"soak: {results['soak']} ({time.monotonic() - started:.0f} s)", flush=True)


def main() -> None:
    args = _arguments()
    scale = QUICK if args.quick else FULL
    url = args.database_url or (DEFAULT_URL + "_quick" if args.quick else DEFAULT_URL)
    seconds = args.seconds or (2.0 if args.quick else 15.0)
    runs = args.runs or (1 if args.quick else 3)
    soak_seconds = args.soak_seconds if args.soak_seconds is not None else (10.0 if args.quick else 300.0)
    levels = [int(c) for c in args.concurrency.split(",")]
    names = [name.strip() for name in args.apps.split(",")]
    if unknown := [name for name in names if name not in APPS]:
        raise SystemExit(f"--apps: unknown {', '.join(unknown)} (known: {', '.join(APPS)})")
    if "app" not in names:
        raise SystemExit("--apps must include app: it issues the requests' token and cursor")
    if args.compare:
        checkout.resolve(args.compare)  # a mistyped ref fails now, not after the seeding
    variants = [_variant(words) for words in args.variant]
    if len({variant.name for variant in variants}) < len(variants):
        raise SystemExit("--variant: each needs a name of its own")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop)
    if args.instructions and not instructions.available():
        raise SystemExit("--instructions: needs valgrind's callgrind (Debian package valgrind)")
    binary = wrk.ensure_installed()
    env = server_env(url, secrets.token_urlsafe(48), args.pool_size)
    workload.prepare(url, scale, env)
    extra: dict[str, str] = dict(args.env)

    logs = args.output / "logs"  # the servers' own output, ignored by git
    logs.mkdir(parents=True, exist_ok=True)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    results: dict[str, Any] = {
        "date": date,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": _postgres_version(url)},
        "scale": {"users": scale.users, "posts": scale.posts, "comments": scale.comments},
        "settings": {
            "pool_size": args.pool_size,
            "runs": runs,
            "seconds": seconds,
            "warmup": args.warmup,
            "env": extra,
        },
        "apps": {name: APPS[name].description for name in names},
        "variants": {variant.name: dict(variant.env) for variant in variants},
        "endpoints": {},
    }
    results["apps"] |= {variant.name: variant.description for variant in variants}
    with ExitStack() as stack:
        apps = [APPS[name] for name in names] + variants
        if args.compare:
            apps.append(_ref_app(stack, args.compare, results))
        serving = stack.enter_context(ExitStack())  # the servers alone: closed before the ref's checkout
        servers = _start(serving, apps, env | extra, logs, results)
        chosen = workload.endpoints(url, scale, servers["app"].base_url)
        if args.endpoints != "all":
            keys = set(args.endpoints.split(","))
            chosen = [e for e in chosen if e.key in keys]
        _check_equal({name: server for name, server in servers.items() if name != "ref"}, chosen)
        if "ref" in servers:
            results["compare"]["differences"] = _check_ref(servers, chosen)
        if args.instructions:
            serving.close()  # each app is served again, alone, under valgrind
            results["instructions"] = _count_instructions(
                apps, chosen, env=env | extra, logs=logs, requests=args.instructions, level=levels[0]
            )
        else:
            _timed(binary, servers, chosen, levels, runs=runs, seconds=seconds, warmup=args.warmup, results=results)
            _app_alone(
                binary,
                servers["app"],
                chosen,
                seconds=seconds,
                overload=not args.no_overload,
                soak=soak_seconds,
                results=results,
            )
    _publish(results, args, date=date, variants=bool(variants))


def _publish(results: dict[str, Any], args: argparse.Namespace, *, date: str, variants: bool) -> None:
    # A quick run only tries the harness: it keeps out of the published results. An A/B run measures
    # a change, not the state of the project: its table is pasted where the change is described.
    # So is a count of instructions.
    output = args.output / "quick" if args.quick else args.output
    name = f"{date}-ab-{results['compare']['commit'][:7]}" if args.compare else f"{date}-variants" if variants else date
    if args.instructions:
        name = f"{name}-instructions"
    published = not (args.quick or args.compare or variants or args.instructions)
    written = report.write(results, output / name, ROOT / "BENCHMARKS.md" if published else None)
    print(report.markdown(results))
    print(f"written: {', '.join(str(path) for path in written)}")


if __name__ == "__main__":
    main()
