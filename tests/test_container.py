"""The container files -- Dockerfile, .dockerignore, compose.yaml -- checked without a container engine.

No engine runs on the project's machines, so the image is never built here. What is checked
instead: compose.yaml is valid and wired as intended (`docker-compose config`, Debian's package,
installed by the test when missing); every command either file runs exists in the CLI with the
options it passes; the image installs from the lock with tasks.py's uv and runs as a non-root
user; and the exact health-check command tells a ready server from an unmigrated database and a
closed port.

Runs once per session, whatever `--db` says (it takes no `backend`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# PyYAML comes with uvicorn[standard]; its stubs (types-PyYAML) are not a dev dependency.
import yaml  # type: ignore[import-untyped]

from app.config import load_settings
from app.setting_values import to_async_storage_url, to_async_url
from tasks import UV_VERSION
from tests.conftest import SECRET_KEY
from tests.debian import ensure_command
from tests.servers import ROOT, free_port, served

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "compose.yaml"
# Docker's meaning of a health check's exit status; 2 is reserved.
HEALTHY, UNHEALTHY = 0, 1


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # 0 for the first FROM's stage


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        keyword, _, arguments = " ".join([*pending, line]).partition(" ")
        pending = []
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), arguments.strip(), stage))
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


INSTRUCTIONS = dockerfile_instructions(DOCKERFILE.read_text())
RUNTIME_STAGE = max(instruction.stage for instruction in INSTRUCTIONS)


def instructions(keyword: str, stage: int | None = None) -> list[Instruction]:
    return [i for i in INSTRUCTIONS if i.keyword == keyword and (stage is None or i.stage == stage)]


def exec_form(arguments: str) -> list[str]:
    """A CMD/ENTRYPOINT in exec form: the shell form would put `sh -c` in front and eat signals."""
    command = json.loads(arguments)
    assert isinstance(command, list), arguments
    assert all(isinstance(word, str) for word in command), arguments
    return command


def healthcheck() -> list[str]:
    (check,) = instructions("HEALTHCHECK", RUNTIME_STAGE)
    match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", check.arguments)
    assert match is not None, f"HEALTHCHECK without CMD: {check.arguments}"
    return exec_form(match.group(2))


def runtime_environment() -> dict[str, str]:
    values: dict[str, str] = {}
    for env in instructions("ENV", RUNTIME_STAGE):
        for item in shlex.split(env.arguments):
            name, separator, value = item.partition("=")
            assert separator, f"ENV in the legacy `ENV NAME value` form: {env.arguments}"
            values[name] = value
    return values


def compose_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def as_words(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def cli_commands() -> list[list[str]]:
    """Every `blogapi ...` command line the image and the compose file run."""
    entrypoint = [exec_form(i.arguments) for i in instructions("ENTRYPOINT", RUNTIME_STAGE)]
    prefix = entrypoint[-1] if entrypoint else []
    commands = [prefix + exec_form(i.arguments) for i in instructions("CMD", RUNTIME_STAGE)[-1:]]
    commands.append(healthcheck())
    for service in compose_document()["services"].values():
        if "command" in service:
            commands.append(prefix + as_words(service["command"]))
        test = service.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test[:1] == ["CMD"]:
            commands.append(as_words(test[1:]))
    # The compose file repeats the image's CMD for `api`: one run of each command is enough.
    unique = dict.fromkeys(tuple(command) for command in commands if command[:1] == ["blogapi"])
    return [list(command) for command in unique]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Wide and plain, so that the help's lines are whole and free of escape codes.
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(  # noqa: S603 -- the suite's own interpreter, arguments from our files
        [sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


# --- Every command exists -------------------------------------------------------------------


def subcommand(command: list[str]) -> tuple[str, ...]:
    """`blogapi db upgrade --x 1` -> ("db", "upgrade"): the words before the first option."""
    return tuple(itertools.takewhile(lambda word: not word.startswith("-"), command[1:]))


def test_the_files_run_the_commands_the_deploy_needs() -> None:
    # Without these the parametrized test below could pass on nothing at all.
    assert {("serve",), ("db", "upgrade")} <= {subcommand(command) for command in cli_commands()}


@pytest.mark.parametrize("command", cli_commands(), ids=" ".join)
def test_every_command_exists_in_the_cli(command: list[str]) -> None:
    # --help is eager, yet click parses every option first: an option the command does not
    # have fails here (exit 2), not only an unknown command.
    result = run_cli(*command[1:], "--help")
    assert result.returncode == 0, f"`{' '.join(command)}` is not a command of the CLI:\n{result.stderr}"


def test_serve_reads_the_variables_the_image_sets() -> None:
    shown = run_cli("serve", "--help")
    assert shown.returncode == 0, shown.stderr
    # The worker count reaches `serve` only through its option's environment variable.
    assert "WEB_CONCURRENCY" in runtime_environment()
    assert "env var: WEB_CONCURRENCY" in shown.stdout, shown.stdout


# --- The Dockerfile ---------------------------------------------------------------------------


def test_the_image_installs_with_the_uv_of_tasks_py() -> None:
    installs = [re.search(r"\buv==(\S+)", run.arguments) for run in instructions("RUN", 0)]
    versions = [match.group(1) for match in installs if match is not None]
    assert versions == [UV_VERSION]


def test_the_image_installs_exactly_the_lock() -> None:
    syncs = [run.arguments for run in instructions("RUN") if "uv sync" in run.arguments]
    assert len(syncs) == 2, syncs
    for sync in syncs:
        assert "--frozen" in sync.split(), sync
        assert "--no-dev" in sync.split(), sync
    dependencies, project = syncs
    assert "--no-install-project" in dependencies.split()
    assert "--no-install-project" not in project.split()
    assert "--no-editable" in project.split(), "the runtime stage copies the venv without the sources"


def test_the_dependency_layer_depends_on_the_lock_alone() -> None:
    copied: list[str] = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "RUN" and "uv sync" in instruction.arguments:
            break
        if instruction.keyword in ("COPY", "ADD"):
            copied += copy_sources(instruction)
    assert sorted(copied) == ["pyproject.toml", "uv.lock"]


def copy_sources(instruction: Instruction) -> list[str]:
    words = [word for word in shlex.split(instruction.arguments) if not word.startswith("--")]
    return words[:-1]


def test_the_runtime_stage_copies_only_from_the_build() -> None:
    copies = instructions("COPY", RUNTIME_STAGE) + instructions("ADD", RUNTIME_STAGE)
    assert copies
    assert all("--from=build" in copy.arguments.split() for copy in copies), copies


def test_the_image_runs_as_a_user_who_is_not_root() -> None:
    users = instructions("USER", RUNTIME_STAGE)
    assert users, "the runtime stage has no USER: the app would run as root"
    user = users[-1].arguments.split(":")[0]
    assert user not in ("root", "0"), users[-1]


def test_the_image_serves_on_8000_in_production() -> None:
    assert any("8000" in expose.arguments.split() for expose in instructions("EXPOSE", RUNTIME_STAGE))
    environment = runtime_environment()
    assert environment["ENVIRONMENT"] == "production"
    assert environment["PYTHONUNBUFFERED"] == "1"
    (command,) = (exec_form(cmd.arguments) for cmd in instructions("CMD", RUNTIME_STAGE))
    # `serve`, not bare uvicorn: it is what applies the process tuning of app/serving.py.
    assert command[:2] == ["blogapi", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 -- the container's own interfaces
    assert command[command.index("--port") + 1] == "8000"


def test_the_health_check_asks_for_readiness() -> None:
    command = healthcheck()
    assert command[:2] == ["python", "-c"]
    assert "/health/ready" in command[2]


def test_the_build_context_has_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [pattern for pattern in patterns if pattern and not pattern.startswith("#")]
    # An allowlist: whatever else is in the checkout (.venv, .git, .env, *.db) stays out.
    assert patterns[0] == "*"
    admitted = {pattern.removeprefix("!") for pattern in patterns if pattern.startswith("!")}
    context_copies = [copy for copy in instructions("COPY") if "--from" not in copy.arguments]
    sources = [source for copy in context_copies for source in copy_sources(copy)]
    assert sources
    missing = [source for source in sources if source.rstrip("/") not in admitted]
    assert not missing, f"COPY sources that .dockerignore keeps out of the build context: {missing}"


# --- The health check itself ------------------------------------------------------------------


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, aimed at `port` instead of the container's 8000."""
    _, flag, code = healthcheck()
    assert "127.0.0.1:8000/" in code, code
    code = code.replace("127.0.0.1:8000/", f"127.0.0.1:{port}/")
    return subprocess.run(  # noqa: S603 -- the Dockerfile's own one-liner
        [sys.executable, flag, code], capture_output=True, text=True, timeout=30, check=False
    )


def test_the_health_check_passes_on_a_ready_server(tmp_path: Path) -> None:
    with served(f"sqlite:///{tmp_path / 'ready.db'}", tmp_path / "server.log") as server:
        result = run_healthcheck(server.port)
    assert result.returncode == HEALTHY, result.stderr


def test_the_health_check_fails_on_an_unmigrated_database(tmp_path: Path) -> None:
    # What compose's ordering prevents: a replica up before `migrate` finished.
    database = f"sqlite:///{tmp_path / 'empty.db'}"
    with served(database, tmp_path / "server.log", MIGRATE_ON_STARTUP="false") as server:
        assert httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 503
        result = run_healthcheck(server.port)
    assert result.returncode == UNHEALTHY, result.stderr
    assert "503" in result.stderr


def test_the_health_check_fails_promptly_on_a_closed_port() -> None:
    started = time.monotonic()
    result = run_healthcheck(free_port())
    assert result.returncode == UNHEALTHY, result.stderr
    assert "Connection refused" in result.stderr
    assert time.monotonic() - started < 5, "slower than the HEALTHCHECK's --timeout"


# --- compose.yaml -----------------------------------------------------------------------------

# Every variable compose.yaml reads: the developer's own values must not decide what is tested.
_COMPOSE_VARIABLES = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))


@pytest.fixture(scope="module")
def docker_compose() -> Path:
    return ensure_command("docker-compose", "docker-compose")


def compose_config(docker_compose: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # An empty env file: a .env in the checkout would otherwise fill in what the test leaves unset.
    empty = tmp_path / "empty.env"
    empty.touch()
    environment = {name: value for name, value in os.environ.items() if name not in _COMPOSE_VARIABLES}
    environment = {name: value for name, value in environment.items() if not name.startswith("COMPOSE_")}
    command = [docker_compose, "--project-directory", ROOT, "-f", COMPOSE_FILE, "--env-file", empty, "config"]
    return subprocess.run(  # noqa: S603 -- Debian's docker-compose, arguments built here
        [str(word) for word in command],
        cwd=tmp_path,
        env={**environment, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rendered(docker_compose: Path, tmp_path: Path, **env: str) -> dict[str, Any]:
    result = compose_config(docker_compose, tmp_path, SECRET_KEY=SECRET_KEY, **env)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_runs_db_then_migrate_then_api(docker_compose: Path, tmp_path: Path) -> None:
    services = rendered(docker_compose, tmp_path)["services"]
    assert {"db", "migrate", "api", "redis"} <= set(services)
    db, migrate, api = services["db"], services["migrate"], services["api"]
    assert "pg_isready" in as_words(db["healthcheck"]["test"])
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert as_words(migrate["command"]) == ["blogapi", "db", "upgrade"]
    assert str(migrate["restart"]) == "no"
    # `disable: true` as compose v2 renders it, or as docker-compose 1 does.
    assert migrate["healthcheck"].get("disable") is True or migrate["healthcheck"].get("test") == ["NONE"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert str(api["environment"]["MIGRATE_ON_STARTUP"]).lower() == "false"
    # The one migrator runs the image the replicas run.
    assert (migrate["image"], migrate["build"]) == (api["image"], api["build"])


def test_compose_gives_the_api_a_valid_production_configuration(docker_compose: Path, tmp_path: Path) -> None:
    services = rendered(docker_compose, tmp_path)["services"]
    environment = {name: str(value) for name, value in services["api"]["environment"].items()}
    assert environment["SECRET_KEY"] == SECRET_KEY
    settings = load_settings(**{name.lower(): value for name, value in environment.items()})
    assert settings.environment == "production"
    assert not settings.migrate_on_startup
    url = to_async_url(settings.database_url)
    assert (url.drivername, url.host) == ("postgresql+asyncpg", "db")
    # Replicas share the rate limits' counts, in the compose file's own Redis.
    assert to_async_storage_url(settings.rate_limit_storage_url).startswith("async+redis://redis:")
    assert environment["DATABASE_URL"] == str(services["migrate"]["environment"]["DATABASE_URL"])


def published_ports(service: dict[str, Any]) -> list[int]:
    """The host ports a service's first port mapping can take, short or long syntax."""
    (mapping, *_) = service["ports"]
    published = str(mapping["published"]) if isinstance(mapping, dict) else str(mapping).rsplit(":", 1)[0]
    first, _, last = published.rpartition(":")[2].partition("-")
    return list(range(int(first), int(last or first) + 1))


def test_compose_runs_two_replicas_side_by_side(docker_compose: Path, tmp_path: Path) -> None:
    api = rendered(docker_compose, tmp_path, API_REPLICAS="2")["services"]["api"]
    assert int(api["deploy"]["replicas"]) == 2
    # Each replica binds a host port of its own.
    assert len(published_ports(api)) >= 2
    assert 8000 in published_ports(api)


def test_compose_refuses_to_start_without_a_secret_key(docker_compose: Path, tmp_path: Path) -> None:
    result = compose_config(docker_compose, tmp_path)
    assert result.returncode != 0, result.stdout
    assert "SECRET_KEY" in result.stderr
