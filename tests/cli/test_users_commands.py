"""`blogapi users ...` on every backend, checked through the API the accounts are used with."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from subprocess import CompletedProcess

import httpx
import pytest

from tests.cli.runner import blogapi, one_line_failure
from tests.conftest import PASSWORD, NewAccount, new_email
from tests.databases import ScratchDatabase


def run(backend: ScratchDatabase, tmp_path: Path, *args: str, stdin: str | None = None) -> CompletedProcess[str]:
    return blogapi("users", *args, cwd=tmp_path, **backend.environment, stdin=stdin)


def succeeded(result: CompletedProcess[str]) -> str:
    """The one line a command that succeeded printed."""
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout.count("\n") == 1, result.stdout
    return result.stdout.strip()


def at_once(*commands: Callable[[], CompletedProcess[str]]) -> list[CompletedProcess[str]]:
    """Independent commands side by side: each process spends seconds importing the app."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: command(), commands))


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/auth/token", data={"username": email, "password": password})


async def test_create_makes_an_account_that_logs_in(
    backend: ScratchDatabase, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    email = new_email("Created.User").replace("example.com", "Example.COM")
    admin_email = new_email("admin")
    created, admin = at_once(
        lambda: run(
            backend, tmp_path, "create", email, "--name", " José Núñez ", "--password-stdin", stdin=PASSWORD + "\n"
        ),
        lambda: run(
            backend, tmp_path, "create", admin_email, "--admin", "--name", "Ada", "--password-stdin", stdin=PASSWORD
        ),
    )
    line = succeeded(created)
    match = re.fullmatch(r"created user (\d+) (\S+)", line)
    assert match, line
    assert match[2] == email.lower()  # normalised as registration does

    token = await log_in(client, email, PASSWORD)
    assert token.status_code == 200, token.text
    me = (await client.get("/users/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})).json()
    assert (me["id"], me["name"], me["slug"], me["is_admin"]) == (int(match[1]), "José Núñez", "jose-nunez", False)

    line = succeeded(admin)
    assert re.fullmatch(rf"created user \d+ {re.escape(admin_email)} \(admin\)", line), line
    admin_id = int(line.split()[2])
    assert (await client.get(f"/users/{admin_id}")).json()["is_admin"] is True

    duplicate = run(backend, tmp_path, "create", email.upper(), "--name", "Again", "--password-stdin", stdin=PASSWORD)
    assert one_line_failure(duplicate) == "a user with this email already exists"


@pytest.mark.backends("sqlite")  # validation comes before any statement: the same on every backend
async def test_invalid_input_is_one_line_naming_the_field(
    backend: ScratchDatabase, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    bad_email, short_password = at_once(
        lambda: run(backend, tmp_path, "create", "not-an-address", "--name", "N", "--password-stdin", stdin=PASSWORD),
        lambda: run(backend, tmp_path, "create", "ok@example.com", "--name", "N", "--password-stdin", stdin="short\n"),
    )
    assert one_line_failure(bad_email).startswith("invalid email: value is not a valid email address: ")
    assert one_line_failure(short_password) == "invalid password: String should have at least 8 characters"
    assert (await client.get("/users", params={"include": "total"})).json()["total"] == 0


async def test_promote_demote_and_deactivate_show_in_the_api(
    backend: ScratchDatabase, client: httpx.AsyncClient, new_account: NewAccount, tmp_path: Path
) -> None:
    account, leaving = await new_account(name="Role Changes"), await new_account(name="Leaving")
    who = f"user {account.id} {account.email}"

    promoted, deactivated = at_once(
        lambda: run(backend, tmp_path, "promote", account.email.upper()),
        lambda: run(backend, tmp_path, "deactivate", leaving.email),
    )
    assert succeeded(promoted) == f"promoted {who} to admin"
    assert (await client.get("/users/me", headers=account.headers)).json()["is_admin"] is True
    assert succeeded(deactivated) == f"deactivated user {leaving.id} {leaving.email}"
    assert (await client.get(f"/users/{leaving.id}")).status_code == 404
    assert (await client.get("/users/me", headers=leaving.headers)).status_code == 401
    assert (await log_in(client, leaving.email, PASSWORD)).status_code == 401

    demoted, again = at_once(
        lambda: run(backend, tmp_path, "demote", account.email),
        lambda: run(backend, tmp_path, "deactivate", leaving.email),
    )
    assert succeeded(demoted) == f"demoted {who}: no longer an admin"
    assert (await client.get("/users/me", headers=account.headers)).json()["is_admin"] is False
    assert succeeded(again) == f"user {leaving.id} {leaving.email} is already deactivated"


async def test_set_password_revokes_earlier_tokens(
    backend: ScratchDatabase, client: httpx.AsyncClient, new_account: NewAccount, tmp_path: Path
) -> None:
    account = await new_account(name="New Password")
    new_password = "an entirely new password"
    changed, unknown = at_once(
        lambda: run(backend, tmp_path, "set-password", account.email, "--password-stdin", stdin=new_password + "\n"),
        lambda: run(backend, tmp_path, "promote", "nobody@example.com"),
    )
    assert one_line_failure(unknown) == "no user with the email nobody@example.com"
    assert (
        succeeded(changed)
        == f"set a new password for user {account.id} {account.email}; its earlier tokens are revoked"
    )

    assert (await client.get("/users/me", headers=account.headers)).status_code == 401
    assert (await log_in(client, account.email, PASSWORD)).status_code == 401
    assert (await log_in(client, account.email, new_password)).status_code == 200


def test_an_unmigrated_sqlite_database_is_refused_and_not_created(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    result = blogapi(
        "users", "create", "a@example.com", "--name", "A", "--password-stdin",
        cwd=tmp_path, database_url=f"sqlite:///{database}", stdin=PASSWORD,
    )  # fmt: skip
    line = one_line_failure(result)
    assert line.startswith("the database "), line
    assert line.endswith("is not migrated: run `blogapi db upgrade` first"), line
    assert not database.exists()
