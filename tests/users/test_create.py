from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import User
from tests.conftest import PASSWORD, count_users, new_email

PROFILE_KEYS = {"id", "email", "name", "slug", "bio", "is_active", "is_admin", "created_at", "updated_at"}


async def test_register_returns_own_profile_with_location(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    response = await client.post(
        "/users", json={"email": "New.Person@Example.COM", "name": "  New Person ", "password": PASSWORD, "bio": "hi"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == PROFILE_KEYS
    assert response.headers["location"] == f"/users/{body['id']}"
    assert body["email"] == "new.person@example.com"
    assert body["name"] == "New Person"
    assert body["bio"] == "hi"
    assert body["is_active"] is True
    assert body["is_admin"] is False
    assert body["created_at"].endswith("Z")
    assert body["created_at"] == body["updated_at"]
    async with session_factory() as session:
        stored = (await session.scalars(select(User).where(User.id == body["id"]))).one()
    assert stored.email == "new.person@example.com"
    assert stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in response.text
    assert stored.password_hash not in response.text


async def test_bio_is_optional(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": new_email(), "name": "No Bio", "password": PASSWORD})
    assert response.status_code == 201
    assert response.json()["bio"] is None


async def test_duplicate_email_in_any_case_is_409(client: httpx.AsyncClient) -> None:
    email = new_email("dup")
    first = await client.post("/users", json={"email": email, "name": "One", "password": PASSWORD})
    assert first.status_code == 201
    second = await client.post("/users", json={"email": email.upper(), "name": "Two", "password": PASSWORD})
    assert second.status_code == 409
    assert second.json() == {"detail": "A user with this email already exists", "code": "email_taken"}


@pytest.mark.parametrize("field", ["is_admin", "is_active", "id", "password_hash", "created_at"])
async def test_unknown_or_privileged_fields_are_422(client: httpx.AsyncClient, field: str) -> None:
    payload = {"email": new_email(), "name": "Sneaky", "password": PASSWORD, field: True}
    response = await client.post("/users", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": None}, "email"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"password": "seven77"}, "password"),
        ({"password": "p" * 129}, "password"),
        ({"bio": "b" * 5001}, "bio"),
    ],
)
async def test_invalid_input_is_422_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, object], field: str
) -> None:
    payload = {"email": new_email(), "name": "Valid", "password": PASSWORD} | changes
    response = await client.post("/users", json=payload)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]


async def test_boundary_lengths_are_accepted(client: httpx.AsyncClient) -> None:
    payload = {"email": new_email(), "name": "n" * 100, "password": "p" * 8}
    assert (await client.post("/users", json=payload)).status_code == 201
    payload = {"email": new_email(), "name": "n", "password": "p" * 128}
    assert (await client.post("/users", json=payload)).status_code == 201


async def test_rejected_password_is_not_echoed_back(client: httpx.AsyncClient) -> None:
    response = await client.post("/users", json={"email": new_email(), "name": "E", "password": "sekrit1"})
    assert response.status_code == 422
    assert "sekrit1" not in response.text


async def test_missing_or_malformed_body_is_422(client: httpx.AsyncClient) -> None:
    assert (await client.post("/users", json={})).status_code == 422
    assert (
        await client.post("/users", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 422
    assert (await client.post("/users", json=["a", "list"])).status_code == 422


async def test_racing_registrations_with_one_email_create_exactly_one_user(
    client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    email = new_email("race")
    payloads = [
        {"email": email if i % 2 else email.upper(), "name": f"Racer {i}", "password": PASSWORD} for i in range(12)
    ]
    responses = await asyncio.gather(*(client.post("/users", json=payload) for payload in payloads))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 11
    assert await count_users(session_factory, email) == 1


async def test_addresses_differing_only_by_an_accent_are_different_accounts(client: httpx.AsyncClient) -> None:
    # Lower-casing is the only folding: MariaDB's default collation would also fold accents.
    for email in ("jose@example.com", "josé@example.com"):
        response = await client.post("/users", json={"email": email, "name": "José", "password": PASSWORD})
        assert response.status_code == 201, email
