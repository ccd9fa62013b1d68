"""`blogapi shell -c CODE`: the session and the models, nothing committed unless asked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.cli.runner import blogapi, one_line_failure
from tests.conftest import Register
from tests.databases import ScratchDatabase

COUNT = "print(session.scalar(select(func.count()).select_from(User)))"


async def test_code_runs_with_the_session_and_commits_nothing(
    backend: ScratchDatabase, client: httpx.AsyncClient, register: Register, tmp_path: Path
) -> None:
    await register()
    await register()
    # Deleted and flushed, never committed: the session is rolled back when the shell ends.
    code = f"{COUNT}\nfor user in session.scalars(select(User)):\n    session.delete(user)\nsession.flush()\n{COUNT}"
    result = blogapi("shell", "-c", code, cwd=tmp_path, **backend.environment)
    assert (result.returncode, result.stdout, result.stderr) == (0, "2\n0\n", "")
    assert (await client.get("/users", params={"include": "total"})).json()["total"] == 2


@pytest.mark.backends("sqlite")
def test_failures_are_one_line(backend: ScratchDatabase, tmp_path: Path) -> None:
    never = tmp_path / "never.db"
    with ThreadPoolExecutor(2) as pool:  # each process spends seconds importing the app
        raised = pool.submit(blogapi, "shell", "-c", "Post.nothing", cwd=tmp_path, **backend.environment)
        unmigrated = pool.submit(blogapi, "shell", "-c", COUNT, cwd=tmp_path, database_url=f"sqlite:///{never}")
    assert one_line_failure(raised.result()) == "AttributeError: type object 'Post' has no attribute 'nothing'"
    assert "is not migrated" in one_line_failure(unmigrated.result())
    assert not never.exists()
