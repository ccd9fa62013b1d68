from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import User
from tests.conftest import Account, NewAccount, Register

PUBLIC_KEYS = {"id", "name", "slug", "bio", "is_active", "is_admin", "created_at", "updated_at"}


async def deactivate(session_factory: async_sessionmaker[AsyncSession], user_id: int) -> None:
    async with session_factory() as session:
        await session.execute(update(User).where(User.id == user_id).values(is_active=False))
        await session.commit()


async def test_profile_shows_email_only_to_owner_and_admins(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    anonymous = await client.get(f"/users/{alice.id}")
    assert anonymous.status_code == 200
    assert set(anonymous.json()) == PUBLIC_KEYS
    other = await client.get(f"/users/{alice.id}", headers=bob.headers)
    assert set(other.json()) == PUBLIC_KEYS
    for viewer in (alice, admin):
        response = await client.get(f"/users/{alice.id}", headers=viewer.headers)
        assert response.json() == alice.profile
    assert "password" not in anonymous.text
    assert "hash" not in anonymous.text


async def test_me_is_the_callers_own_profile(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get("/users/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == alice.profile


async def test_missing_user_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/2147483647")
    assert response.status_code == 404
    assert response.json() == {"detail": "User not found", "code": "not_found"}


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "2147483648", "1.5"])
async def test_malformed_user_id_is_422(client: httpx.AsyncClient, user_id: str) -> None:
    assert (await client.get(f"/users/{user_id}")).status_code == 422


async def test_deactivated_user_is_hidden_from_all_but_admins(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await deactivate(session_factory, alice.id)
    assert (await client.get(f"/users/{alice.id}")).status_code == 404
    assert (await client.get(f"/users/{alice.id}", headers=bob.headers)).status_code == 404
    seen_by_admin = await client.get(f"/users/{alice.id}", headers=admin.headers)
    assert seen_by_admin.status_code == 200
    assert seen_by_admin.json()["is_active"] is False


async def _ids(client: httpx.AsyncClient, query: str = "", headers: dict[str, str] | None = None) -> list[int]:
    response = await client.get(f"/users{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_list_envelope_and_defaults(client: httpx.AsyncClient, register: Register) -> None:
    users = [await register(name=f"Member {i:02}") for i in range(12)]
    response = await client.get("/users")
    body = response.json()
    assert set(body) == {"items", "total", "skip", "limit"}
    # Counting is opt-in (include=total): it would otherwise scan every user on every page.
    assert (body["total"], body["skip"], body["limit"]) == (None, 0, 10)
    # Newest first, ties broken by id in the same direction.
    expected = sorted(users, key=lambda user: (user["created_at"], user["id"]), reverse=True)
    assert [item["id"] for item in body["items"]] == [user["id"] for user in expected[:10]]
    assert all(set(item) == PUBLIC_KEYS for item in body["items"])
    rest = (await client.get("/users?skip=10&limit=10&include=total")).json()
    assert [item["id"] for item in rest["items"]] == [user["id"] for user in expected[10:]]
    assert rest["total"] == 12
    with_posts = (await client.get("/users?include=total&include=posts&limit=1")).json()
    assert (with_posts["total"], with_posts["items"][0]["posts"]) == (12, [])
    # Listed with their posts, the profiles are still public ones: no email.
    with_posts = (await client.get("/users?include=posts")).json()
    assert all(set(item) == PUBLIC_KEYS | {"posts"} for item in with_posts["items"])


async def test_list_ordering(
    client: httpx.AsyncClient, register: Register, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    names = ["carol", "Alice", "bob", "Dave"]
    users = {name: await register(name=name) for name in names}
    # Equal timestamps, so only the id tie-break decides between them.
    async with session_factory() as session:
        await session.execute(update(User).values(created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        await session.commit()
    ids = [users[name]["id"] for name in names]
    assert await _ids(client, "?order_by=created_at") == sorted(ids, reverse=True)
    assert await _ids(client, "?order_by=created_at&order=asc") == sorted(ids)
    assert await _ids(client, "?order_by=id&order=asc") == sorted(ids)
    by_name = await _ids(client, "?order_by=name&order=asc")
    assert [next(n for n in names if users[n]["id"] == i).lower() for i in by_name] == ["alice", "bob", "carol", "dave"]


async def test_list_filters_by_name_substring_case_insensitively(client: httpx.AsyncClient, register: Register) -> None:
    smith = await register(name="Anna SMITH")
    smithers = await register(name="Wayland Smithers")
    await register(name="John Doe")
    percent = await register(name="100% Real")
    assert set(await _ids(client, "?q=smith")) == {smith["id"], smithers["id"]}
    assert await _ids(client, "?q=%25") == [percent["id"]]  # a literal %, not a wildcard
    assert await _ids(client, "?q=_") == []
    body = (await client.get("/users?q=SMITH&limit=1&include=total")).json()
    assert body["total"] == 2
    assert len(body["items"]) == 1


async def test_list_filters_by_admin_flag(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    assert await _ids(client, "?is_admin=true") == [admin.id]
    assert await _ids(client, "?is_admin=false") == [alice.id]


@pytest.mark.parametrize(
    "query",
    ["?limit=0", "?limit=101", "?skip=-1", "?order_by=email", "?order=up", "?is_admin=perhaps", "?limit=ten"],
)
async def test_list_rejects_bad_parameters(client: httpx.AsyncClient, query: str) -> None:
    assert (await client.get(f"/users{query}")).status_code == 422


async def test_listing_deactivated_users_is_for_admins(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await deactivate(session_factory, bob.id)
    assert set(await _ids(client)) == {alice.id, admin.id}
    assert (await client.get("/users?is_active=false")).status_code == 401
    assert (await client.get("/users?is_active=false", headers=alice.headers)).status_code == 403
    assert await _ids(client, "?is_active=false", headers=admin.headers) == [bob.id]
    # Saying the default out loud is allowed to anyone.
    assert set(await _ids(client, "?is_active=true", headers=alice.headers)) == {alice.id, admin.id}


async def test_email_domain_filter_is_for_admins_and_ors_the_domains(
    client: httpx.AsyncClient, new_account: NewAccount, admin: Account
) -> None:
    gmail = await new_account(email="one@gmail.com")
    yahoo = await new_account(email="two@Yahoo.com")
    await new_account(email="three@notgmail.com")
    query = "?email_domain=gmail.com&email_domain=yahoo.com"
    assert (await client.get(f"/users{query}")).status_code == 401
    assert (await client.get(f"/users{query}", headers=gmail.headers)).status_code == 403
    assert set(await _ids(client, query, headers=admin.headers)) == {gmail.id, yahoo.id}
    assert await _ids(client, "?email_domain=GMAIL.com", headers=admin.headers) == [gmail.id]
    bad = await client.get("/users?email_domain=not a domain", headers=admin.headers)
    assert bad.status_code == 422


async def test_list_shows_emails_as_profiles_do(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    def emails(body: dict[str, Any]) -> dict[int, str | None]:
        return {item["id"]: item.get("email") for item in body["items"]}

    anonymous = (await client.get("/users")).json()
    assert set(emails(anonymous).values()) == {None}
    as_alice = emails((await client.get("/users", headers=alice.headers)).json())
    assert as_alice == {alice.id: alice.email, bob.id: None, admin.id: None}
    as_admin = emails((await client.get("/users", headers=admin.headers)).json())
    assert as_admin == {alice.id: alice.email, bob.id: bob.email, admin.id: admin.email}
