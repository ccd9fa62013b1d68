"""Two app processes on one database behave as one: what one issues, the other honours.

Tokens and cursors are signed with SECRET_KEY and carry what they stand for, so no process keeps
state another would need. (Rate limits shared through Redis, metrics summed over workers and
migrations run once are tested beside their features: test_rate_limits, test_operations_server,
test_migration_lock.)
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import PASSWORD
from tests.servers import served


def test_a_token_and_a_cursor_from_one_process_work_on_another(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'blog.db'}"
    with (
        served(database, tmp_path / "one.log", RATE_LIMIT_ENABLED="false") as one,
        served(database, tmp_path / "two.log", RATE_LIMIT_ENABLED="false", MIGRATE_ON_STARTUP="false") as two,
        httpx.Client(base_url=one.url, timeout=30) as first,
        httpx.Client(base_url=two.url, timeout=30) as second,
    ):
        account = {"email": "both@example.com", "name": "Both", "password": PASSWORD}
        assert first.post("/users", json=account).status_code == 201
        token = first.post("/auth/token", data={"username": account["email"], "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for number in range(5):
            assert (
                first.post("/posts", json={"title": f"p{number}", "content": "x"}, headers=headers).status_code == 201
            )

        me = second.get("/users/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == account["email"]

        page = first.get("/posts", params={"limit": 2}).json()
        rest = second.get("/posts", params={"limit": 10, "cursor": page["next_cursor"]})
        assert rest.status_code == 200, rest.text
        titles = [post["title"] for post in page["items"] + rest.json()["items"]]
        assert titles == ["p4", "p3", "p2", "p1", "p0"]
