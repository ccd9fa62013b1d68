from __future__ import annotations

import asyncio

import httpx
import pytest

from app.users.slugs import base_slug, first_free
from tests.conftest import PASSWORD, Account, Register, new_email

RULES = [
    ("José Núñez", "jose-nunez"),
    ("Zoë O'Brien", "zoe-o-brien"),
    ("  --Alice   Smith!! ", "alice-smith"),
    ("Straße Æsir", "strasse-aesir"),
    ("Łódź 2024", "lodz-2024"),
    ("\U0001d400\U0001d425\U0001d422\U0001d41c\U0001d41e \u210celga", "alice-helga"),  # bold, black-letter
    ("Ðóra Ħanna", "dora-hanna"),
    ("!!!", ""),
    ("日本語", ""),
]


@pytest.mark.parametrize(("name", "slug"), RULES)
def test_slug_rules(name: str, slug: str) -> None:
    assert base_slug(name) == slug


def test_duplicates_take_the_first_free_number() -> None:
    assert first_free("alice", []) == "alice"
    assert first_free("alice", ["alice"]) == "alice-2"
    assert first_free("alice", ["alice", "alice-2", "alice-7", "alice-x"]) == "alice-3"


async def test_registration_gives_a_slug_and_duplicates_a_suffix(client: httpx.AsyncClient, register: Register) -> None:
    first = await register(name="Alice Smith")
    second = await register(name="alice smith")
    third = await register(name="ALICE  SMITH")
    accented = await register(name="José Núñez")
    assert [first["slug"], second["slug"], third["slug"]] == ["alice-smith", "alice-smith-2", "alice-smith-3"]
    assert accented["slug"] == "jose-nunez"
    nameless = await register(name="!!!")
    assert nameless["slug"] == f"user-{nameless['id']}"
    assert nameless["updated_at"] == nameless["created_at"]
    # A name whose own slug carries a number does not push later duplicates past it.
    assert [(await register(name=name))["slug"] for name in ("Bob 7", "Bob", "Bob")] == ["bob-7", "bob", "bob-2"]


async def test_profile_by_slug(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    response = await client.get(f"/users/by-slug/{alice.profile['slug']}")
    assert response.status_code == 200
    assert response.json()["id"] == alice.id
    assert "email" not in response.json()
    assert (await client.get(f"/users/by-slug/{alice.profile['slug']}", headers=alice.headers)).json() == alice.profile
    assert (await client.get("/users/by-slug/nobody-by-that-name")).status_code == 404
    assert (await client.get(f"/users/by-slug/{'x' * 121}")).status_code == 422
    await client.patch(f"/users/{alice.id}", json={"is_active": False}, headers=admin.headers)
    assert (await client.get(f"/users/by-slug/{alice.profile['slug']}")).status_code == 404
    assert (await client.get(f"/users/by-slug/{alice.profile['slug']}", headers=admin.headers)).status_code == 200


async def test_renaming_keeps_the_slug(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.patch(f"/users/{alice.id}", json={"name": "Alice Jones"}, headers=alice.headers)
    assert response.json()["slug"] == alice.profile["slug"]
    assert (await client.get(f"/users/by-slug/{alice.profile['slug']}")).json()["name"] == "Alice Jones"
    assert (await client.patch(f"/users/{alice.id}", json={"slug": "mine"}, headers=alice.headers)).status_code == 422


async def test_racing_registrations_with_one_name_get_distinct_slugs(client: httpx.AsyncClient) -> None:
    payloads = [{"email": new_email("same"), "name": "Same Name", "password": PASSWORD} for _ in range(16)]
    responses = await asyncio.gather(*(client.post("/users", json=payload) for payload in payloads))
    assert {response.status_code for response in responses} == {201}
    slugs = sorted(response.json()["slug"] for response in responses)
    assert slugs == sorted(["same-name", *(f"same-name-{n}" for n in range(2, 17))])
