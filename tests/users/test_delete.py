from __future__ import annotations

import httpx

from tests.conftest import PASSWORD, Account


async def test_owner_deletes_own_account(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.delete(f"/users/{alice.id}", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"deleted": alice.id}
    assert (await client.get(f"/users/{alice.id}")).status_code == 404
    assert (await client.post("/auth/token", data={"username": alice.email, "password": PASSWORD})).status_code == 401
    again = await client.post("/users", json={"email": alice.email, "name": "Alice Again", "password": PASSWORD})
    assert again.status_code == 201


async def test_only_owner_or_admin_may_delete(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    assert (await client.delete(f"/users/{alice.id}")).status_code == 401
    assert (await client.delete(f"/users/{alice.id}", headers=bob.headers)).status_code == 403
    assert (await client.get(f"/users/{alice.id}")).status_code == 200
    response = await client.delete(f"/users/{alice.id}", headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"deleted": alice.id}


async def test_deleting_a_missing_user_is_404(client: httpx.AsyncClient, admin: Account) -> None:
    assert (await client.delete("/users/2147483647", headers=admin.headers)).status_code == 404
