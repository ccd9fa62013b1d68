"""Instructions per request, counted by callgrind: a figure the machine's other load cannot move.

On this shared 2-core machine wrk's CPU per request moves by several per cent from run to run
(BENCHMARKS.md), more than the differences a change is meant to make. callgrind counts the
instructions the server's process executes while it serves a fixed list of requests: repeated,
the count agrees to within about 0.5 % (how many requests share a turn of the event loop still
varies with timing). It is user space only -- the kernel's share (sockets, the log's
writes) is not in it -- and an instruction is not a fixed time, so a count complements the timed
runs; it does not replace them.

Each app is served under valgrind on its own, warmed up with uncounted requests; counting is
switched on for `requests` requests (`--instructions`, at the first `--concurrency` level, from
an httpx client in this process) and off again before the server stops.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.servers import AppUnderTest, serve
from bench.workload import Endpoint

WARMUP = 300
# valgrind runs the server some 50 times slower: its start, the requests and its stop wait as long.
PATIENCE = 40.0


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def count(
    app: AppUnderTest, endpoint: Endpoint, *, env: dict[str, str], port: int, log: Path, requests: int, concurrency: int
) -> dict[str, float]:
    """Per request of `endpoint` (`requests` of them counted): the instructions the server executed,
    and callgrind's simulated cache misses weighed into an estimate of its cycles."""
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as directory:
        output = Path(directory) / "callgrind.out"
        wrapper = (
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=yes",
            "--instr-atstart=no",
            f"--callgrind-out-file={output}",
        )
        with serve(app, port=port, env=env, log=log, wrapper=wrapper, patience=PATIENCE) as server:
            asyncio.run(_load(server.base_url, endpoint, WARMUP, concurrency))
            _instrument(server.pid, on=True)
            asyncio.run(_load(server.base_url, endpoint, requests, concurrency))
            _instrument(server.pid, on=False)
        # callgrind writes its counts as the process exits, which serve() has waited for.
        events = _totals(output)
    # KCachegrind's estimate, without branch simulation: a first-level miss costs 10, a last-level one 100.
    first_level = events["I1mr"] + events["D1mr"] + events["D1mw"]
    last_level = events["ILmr"] + events["DLmr"] + events["DLmw"]
    return {
        "instructions": events["Ir"] / requests,
        "cycles": (events["Ir"] + 10 * first_level + 100 * last_level) / requests,
    }


async def _load(base_url: str, endpoint: Endpoint, requests: int, concurrency: int) -> None:
    """`requests` requests from `endpoint`'s list, in order, over `concurrency` kept-alive connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    cycle = itertools.islice(itertools.cycle(endpoint.requests), requests)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=600) as client:

        async def connection() -> None:
            for request in cycle:  # shared: each request is taken by exactly one connection
                response = await client.request(
                    request.method, request.path, headers=request.headers, content=request.body
                )
                if response.status_code >= 500:
                    raise SystemExit(f"{endpoint.title}: {request.method} {request.path} -> {response.status_code}")

        await asyncio.gather(*(connection() for _ in range(concurrency)))


def _instrument(pid: int, *, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True, capture_output=True)


def _totals(output: Path) -> dict[str, int]:
    """Each event's count over the file's parts (one per dump; here the one written at exit)."""
    names: list[str] = []
    totals: dict[str, int] = {}
    for line in output.read_text().splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("totals:"):
            for name, value in zip(names, line.split()[1:], strict=True):
                totals[name] = totals.get(name, 0) + int(value)
    if "Ir" not in totals:
        raise SystemExit(f"callgrind wrote no totals to {output}")
    return totals


def table(results: dict[str, Any]) -> list[str]:
    """Markdown: instructions and estimated cycles per request per app, and ratios to the first app."""
    counted = results["instructions"]
    names = list(results["apps"])
    first, others = names[0], names[1:]
    lines = [
        f"Per request, under callgrind: {counted['requests']} requests counted after {WARMUP} uncounted, "
        f"c={counted['concurrency']}; *cycles* is callgrind's estimate from its simulated cache misses "
        f"(Ir + 10 x first-level misses + 100 x last-level misses). Ratios are to {first}.",
        "",
        "| Endpoint | app | instructions | ratio | est. cycles | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for title, per_app in counted["endpoints"].items():
        for name in [first, *others]:
            mine, theirs = per_app[name], per_app[first]
            cells = [f"{mine[kind]:,.0f} | {mine[kind] / theirs[kind]:.3f}x" for kind in ("instructions", "cycles")]
            lines.append(f"| {title} | {name} | {' | '.join(cells)} |")
    return lines
