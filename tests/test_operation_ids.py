"""Operation ids are what generated clients name their methods after: clean, unique and stable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from tests.cli.runner import blogapi

SNAPSHOT = Path(__file__).parent / "snapshots" / "operation_ids.json"


def _operation_ids(document: dict[str, dict[str, dict[str, dict[str, str]]]]) -> dict[str, str]:
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


async def test_operation_ids_match_the_snapshot(client: httpx.AsyncClient) -> None:
    ids = dict(sorted(_operation_ids((await client.get("/openapi.json")).json()).items()))
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(ids, indent=2) + "\n")
    # A rename here breaks every generated client: change the snapshot only on purpose
    # (UPDATE_SNAPSHOTS=1), and say so in the release notes.
    assert ids == json.loads(SNAPSHOT.read_text())
    assert len(set(ids.values())) == len(ids)
    assert all(name.isidentifier() and name.islower() for name in ids.values())


def test_the_openapi_command_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    written = blogapi("openapi", "--out", str(target), cwd=tmp_path)
    assert (written.returncode, written.stdout) == (0, f"wrote {target}\n"), written.stderr
    printed = blogapi("openapi", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    document = json.loads(target.read_text())
    assert json.loads(printed.stdout) == document
    assert _operation_ids(document) == json.loads(SNAPSHOT.read_text())
    # The command builds the app but opens no database: no SQLite file appears.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["openapi.json"]
