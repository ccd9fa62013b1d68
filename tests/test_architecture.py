"""The rules of README's Architecture section that import-linter cannot see."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
MAX_MODULE_LINES = 300
# Opening, ending or resetting a transaction or a connection is the database module's job.
LIFECYCLE_CALLS = {"commit", "rollback", "begin", "reset", "reading", "writing", "connect", "begin_nested"}
# The one partial undo the rules allow: a SAVEPOINT around a retried insert.
ALLOWED = {("app/users/repository.py", "begin_nested")}
LAYERED = sorted(
    path for name in ("router.py", "service.py", "repository.py", "dependencies.py") for path in APP.rglob(name)
)


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }


@pytest.mark.parametrize("path", LAYERED, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_routers_services_and_repositories_leave_transactions_to_the_database_module(path: Path) -> None:
    relative = str(path.relative_to(PROJECT_ROOT))
    found = {name for name in _calls(path) & LIFECYCLE_CALLS if (relative, name) not in ALLOWED}
    assert not found, f"{relative} calls {sorted(found)}: take the handle from app.database instead"


def test_no_module_in_the_app_is_over_300_lines() -> None:
    long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in APP.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules (one job each): {long}"


def test_every_module_of_the_app_has_its_place_in_the_layers() -> None:
    # A module left out of the layered contract would be bound by no rule at all.
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    listed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    modules = {f"app.{path.stem}" for path in APP.glob("*.py") if not path.stem.startswith("__")}
    packages = {f"app.{path.parent.name}" for path in APP.glob("*/__init__.py")}
    assert modules | packages == listed
