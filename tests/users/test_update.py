from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.conftest import PASSWORD, Account, NewAccount


async def test_owner_changes_name_and_bio(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(f"/users/{alice.id}", json={"name": "Alice B", "bio": "Hello"}, headers=alice.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Alice B"
    assert body["bio"] == "Hello"
    assert body["email"] == alice.email
    assert body["created_at"] == alice.profile["created_at"]
    assert datetime.fromisoformat(body["updated_at"]) > datetime.fromisoformat(alice.profile["updated_at"])
    assert (await client.get(f"/users/{alice.id}")).json()["name"] == "Alice B"


async def test_bio_can_be_cleared_but_required_fields_cannot(client: httpx.AsyncClient, alice: Account) -> None:
    await client.patch(f"/users/{alice.id}", json={"bio": "something"}, headers=alice.headers)
    response = await client.patch(f"/users/{alice.id}", json={"bio": None}, headers=alice.headers)
    assert response.json()["bio"] is None
    for field in ("name", "email", "password", "is_active", "is_admin"):
        assert (await client.patch(f"/users/{alice.id}", json={field: None}, headers=alice.headers)).status_code == 422


async def test_empty_patch_changes_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(f"/users/{alice.id}", json={}, headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == alice.profile


async def test_email_change_is_lower_cased_and_unique(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    response = await client.patch(f"/users/{alice.id}", json={"email": "Alice.New@Example.com"}, headers=alice.headers)
    assert response.json()["email"] == "alice.new@example.com"
    taken = await client.patch(f"/users/{alice.id}", json={"email": bob.email.upper()}, headers=alice.headers)
    assert taken.status_code == 409
    assert taken.json() == {"detail": "A user with this email already exists", "code": "email_taken"}


async def test_a_rejected_update_changes_nothing(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    payload = {"name": "Should Not Stick", "email": bob.email}
    assert (await client.patch(f"/users/{alice.id}", json=payload, headers=alice.headers)).status_code == 409
    assert (await client.get(f"/users/{alice.id}")).json()["name"] == alice.profile["name"]


async def test_password_change_takes_effect(client: httpx.AsyncClient, new_account: NewAccount) -> None:
    account = await new_account()
    response = await client.patch(f"/users/{account.id}", json={"password": "new password 1"}, headers=account.headers)
    assert response.status_code == 200
    assert "new password 1" not in response.text
    assert (await client.post("/auth/token", data={"username": account.email, "password": PASSWORD})).status_code == 401
    login = await client.post("/auth/token", data={"username": account.email, "password": "new password 1"})
    assert login.status_code == 200


async def test_only_owner_or_admin_may_update(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    anonymous = await client.patch(f"/users/{alice.id}", json={"name": "X"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (await client.patch(f"/users/{alice.id}", json={"name": "X"}, headers=bob.headers)).status_code == 403
    by_admin = await client.patch(f"/users/{alice.id}", json={"name": "Renamed"}, headers=admin.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()["name"] == "Renamed"


@pytest.mark.parametrize("field", ["is_admin", "is_active"])
async def test_only_admins_set_privileged_flags(
    client: httpx.AsyncClient, alice: Account, admin: Account, field: str
) -> None:
    own = await client.patch(f"/users/{alice.id}", json={field: not alice.profile[field]}, headers=alice.headers)
    assert own.status_code == 403
    by_admin = await client.patch(f"/users/{alice.id}", json={field: not alice.profile[field]}, headers=admin.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()[field] is (not alice.profile[field])


async def test_promoted_user_gains_admin_powers(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    assert (await client.patch(f"/users/{alice.id}", json={"is_admin": True}, headers=admin.headers)).status_code == 200
    response = await client.patch(f"/users/{bob.id}", json={"name": "Edited By Alice"}, headers=alice.headers)
    assert response.status_code == 200


async def test_admin_deactivates_and_reactivates(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    off = await client.patch(f"/users/{alice.id}", json={"is_active": False}, headers=admin.headers)
    assert off.json()["is_active"] is False
    assert (await client.get(f"/users/{alice.id}")).status_code == 404
    assert (await client.post("/auth/token", data={"username": alice.email, "password": PASSWORD})).status_code == 401
    on = await client.patch(f"/users/{alice.id}", json={"is_active": True}, headers=admin.headers)
    assert on.json()["is_active"] is True
    assert (await client.post("/auth/token", data={"username": alice.email, "password": PASSWORD})).status_code == 200


async def test_update_of_missing_user_is_404_for_admins(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.patch("/users/2147483647", json={"name": "Ghost"}, headers=admin.headers)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "payload",
    [{"id": 5}, {"created_at": "2020-01-01T00:00:00Z"}, {"password_hash": "x"}, {"name": ""}, {"email": "nope"}],
)
async def test_update_rejects_unknown_and_invalid_fields(
    client: httpx.AsyncClient, alice: Account, payload: dict[str, object]
) -> None:
    assert (await client.patch(f"/users/{alice.id}", json=payload, headers=alice.headers)).status_code == 422


async def test_a_rejected_update_does_not_echo_the_new_password(client: httpx.AsyncClient, alice: Account) -> None:
    payload = {"password": "Brand New Secret 1", "name": None}
    response = await client.patch(f"/users/{alice.id}", json=payload, headers=alice.headers)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "name"]]
    assert "Brand New Secret 1" not in response.text
