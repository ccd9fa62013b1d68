"""wrk as the load generator: installing it, scripting its requests, reading its results.

wrk is C and uses one event loop per thread, so on this 2-core machine one wrk thread drives
several thousand requests a second while leaving a core to the server under test. Requests come
from a Lua script that cycles through a fixed list (random ids chosen once, the same for every
app), and the script's `done` hook prints the figures as one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "WRKJSON "

_SCRIPT = """
local requests = {%(requests)s}
local threads = {}
local counter = 0

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  counter = offset
  statuses = {}
end

function request()
  counter = counter + 1
  return requests[(counter %% #requests) + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%%d":%%d', status, n)
    end
  end
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"statuses":{%%s}}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(counts, ",")))
end
"""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[int, int]
    socket_errors: int
    timeouts: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    @property
    def unexpected(self) -> int:
        """Responses that are neither 2xx nor a 503 (the documented back-pressure answer)."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300 and status != 503)


def ensure_installed() -> str:
    """The wrk binary; installed from Debian's package when missing (the harness may run as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise SystemExit("wrk is not installed and there is no apt-get to install it with")
    print("installing wrk (Debian package)", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
    if shutil.which("wrk") is None:
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("could not install wrk")
    return found


def _lua_string(value: str) -> str:
    return json.dumps(value)  # JSON string escapes are valid Lua string escapes for this text


def _lua_request(request: Request) -> str:
    headers = ",".join(f"[{_lua_string(k)}]={_lua_string(v)}" for k, v in request.headers.items())
    body = _lua_string(request.body) if request.body is not None else "nil"
    return f"wrk.format({_lua_string(request.method)},{_lua_string(request.path)},{{{headers}}},{body})"


def script(requests: Sequence[Request]) -> str:
    """Lua that cycles through `requests` (each thread from its own offset) and reports JSON."""
    # Each request is formatted once, at start-up, rather than on every call.
    formatted = ",\n".join(_lua_request(request) for request in requests)
    return _SCRIPT % {"requests": formatted, "marker": MARKER}


def run(
    binary: str,
    base_url: str,
    requests: Sequence[Request],
    *,
    connections: int,
    seconds: float,
    threads: int = 1,
    timeout: float = 10.0,
) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script(requests))
        path = Path(handle.name)
    try:
        command = [
            binary,
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{max(1, round(seconds))}s",  # wrk takes whole seconds only
            f"--timeout={timeout:g}s",
            "-s",
            str(path),
            base_url,
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=seconds + 60)
    finally:
        path.unlink()
    for line in completed.stdout.splitlines():
        if line.startswith(MARKER):
            return _parse(json.loads(line.removeprefix(MARKER)))
    raise RuntimeError(f"wrk printed no result (exit {completed.returncode}): {completed.stderr or completed.stdout}")


def _parse(raw: dict[str, object]) -> Result:
    def number(key: str) -> float:
        value = raw[key]
        assert isinstance(value, int | float)
        return float(value)

    statuses = raw["statuses"]
    assert isinstance(statuses, dict)
    return Result(
        requests=int(number("requests")),
        seconds=number("duration_us") / 1e6,
        p50_ms=number("p50_us") / 1000,
        p90_ms=number("p90_us") / 1000,
        p99_ms=number("p99_us") / 1000,
        max_ms=number("max_us") / 1000,
        statuses={int(status): int(n) for status, n in statuses.items()},
        socket_errors=int(number("connect_errors") + number("read_errors") + number("write_errors")),
        timeouts=int(number("timeouts")),
    )
