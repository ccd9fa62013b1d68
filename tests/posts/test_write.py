from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import Connection
from app.models import Post
from app.posts import repository
from app.posts.errors import AuthorGone
from tests.conftest import Account

POST_KEYS = {"id", "title", "content", "views", "author_id", "author", "created_at", "updated_at"}


async def new_post(client: httpx.AsyncClient, account: Account, title: str = "A title") -> dict[str, object]:
    response = await client.post("/posts", json={"title": title, "content": "Some content"}, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_create_post(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/posts", json={"title": "  Hello  ", "content": "World"}, headers=alice.headers)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == POST_KEYS
    assert response.headers["location"] == f"/posts/{body['id']}"
    assert body["title"] == "Hello"
    assert body["views"] == 0
    assert body["author_id"] == alice.id
    assert body["author"] == {"id": alice.id, "name": "Alice Smith"}
    assert body["created_at"] == body["updated_at"]
    assert (await client.get(f"/posts/{body['id']}")).json() == body


async def test_an_author_deleted_after_the_token_check_is_401_and_writes_nothing(
    app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # The INSERT runs in autocommit: the foreign key, not a check beforehand, turns a post by an
    # account deleted since its token was checked into AuthorGone (401), with no row written.
    connection = Connection(app.state.db.gate)
    with pytest.raises(AuthorGone) as raised:
        await repository.insert_post(connection, title="Orphan", content="C", author_id=2**31 - 1)
    await connection.release()
    assert raised.value.status_code == 401
    async with session_factory() as session:
        assert await session.scalar(select(Post.id).where(Post.title == "Orphan")) is None


async def test_anonymous_cannot_post(client: httpx.AsyncClient) -> None:
    response = await client.post("/posts", json={"title": "T", "content": "C"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "payload",
    [
        {"title": "T", "content": "C", "author_id": 1},
        {"title": "T", "content": "C", "views": 100},
        {"title": "T", "content": "C", "id": 7},
        {"title": "", "content": "C"},
        {"title": "   ", "content": "C"},
        {"title": "t" * 201, "content": "C"},
        {"title": "T", "content": ""},
        {"title": "T", "content": "c" * 100_001},
        {"title": "T"},
        {"content": "C"},
        {"title": None, "content": "C"},
    ],
)
async def test_invalid_post_is_422(client: httpx.AsyncClient, alice: Account, payload: dict[str, object]) -> None:
    assert (await client.post("/posts", json=payload, headers=alice.headers)).status_code == 422


async def test_boundary_lengths_are_accepted(client: httpx.AsyncClient, alice: Account) -> None:
    payload = {"title": "t" * 200, "content": "c" * 100_000}
    response = await client.post("/posts", json=payload, headers=alice.headers)
    assert response.status_code == 201
    assert len(response.json()["content"]) == 100_000


async def test_read_missing_or_malformed_post(client: httpx.AsyncClient) -> None:
    assert (await client.get("/posts/2147483647")).status_code == 404
    assert (await client.get("/posts/0")).status_code == 422
    assert (await client.get("/posts/abc")).status_code == 422


async def test_edit_authorization_matrix(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    post = await new_post(client, alice)
    url = f"/posts/{post['id']}"
    assert (await client.patch(url, json={"title": "X"})).status_code == 401
    assert (await client.patch(url, json={"title": "X"}, headers=bob.headers)).status_code == 403
    by_owner = await client.patch(url, json={"title": "By owner"}, headers=alice.headers)
    assert by_owner.status_code == 200
    assert by_owner.json()["title"] == "By owner"
    assert by_owner.json()["content"] == "Some content"
    assert datetime.fromisoformat(by_owner.json()["updated_at"]) > datetime.fromisoformat(str(post["updated_at"]))
    by_admin = await client.patch(url, json={"content": "By admin"}, headers=admin.headers)
    assert by_admin.status_code == 200
    assert by_admin.json()["content"] == "By admin"
    assert by_admin.json()["author"] == {"id": alice.id, "name": "Alice Smith"}


@pytest.mark.parametrize("payload", [{"title": None}, {"content": None}, {"views": 5}, {"author_id": 2}, {"title": ""}])
async def test_invalid_edit_is_422(client: httpx.AsyncClient, alice: Account, payload: dict[str, object]) -> None:
    post = await new_post(client, alice)
    assert (await client.patch(f"/posts/{post['id']}", json=payload, headers=alice.headers)).status_code == 422


async def test_edit_or_delete_missing_post_is_404(client: httpx.AsyncClient, admin: Account) -> None:
    assert (await client.patch("/posts/2147483647", json={"title": "X"}, headers=admin.headers)).status_code == 404
    assert (await client.delete("/posts/2147483647", headers=admin.headers)).status_code == 404


async def test_delete_authorization_matrix(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    first, second = await new_post(client, alice), await new_post(client, alice)
    assert (await client.delete(f"/posts/{first['id']}")).status_code == 401
    assert (await client.delete(f"/posts/{first['id']}", headers=bob.headers)).status_code == 403
    by_owner = await client.delete(f"/posts/{first['id']}", headers=alice.headers)
    assert by_owner.status_code == 200
    assert by_owner.json() == {"deleted": first["id"]}
    assert (await client.get(f"/posts/{first['id']}")).status_code == 404
    by_admin = await client.delete(f"/posts/{second['id']}", headers=admin.headers)
    assert by_admin.json() == {"deleted": second["id"]}


async def test_views_count_up_without_sign_in(client: httpx.AsyncClient, alice: Account) -> None:
    post = await new_post(client, alice)
    for expected in (1, 2, 3):
        response = await client.post(f"/posts/{post['id']}/views")
        assert response.status_code == 200
        assert response.json() == {"id": post["id"], "views": expected}
    after = (await client.get(f"/posts/{post['id']}")).json()
    assert after["views"] == 3
    assert after["updated_at"] == post["updated_at"]  # a read is not an edit
    assert (await client.post("/posts/2147483647/views")).status_code == 404


async def test_concurrent_views_are_exact(
    client: httpx.AsyncClient, alice: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    post = await new_post(client, alice)
    responses = await asyncio.gather(*(client.post(f"/posts/{post['id']}/views") for _ in range(200)))
    assert {response.status_code for response in responses} == {200}
    # Every caller saw its own increment: the counts handed out are exactly 1..200.
    assert sorted(response.json()["views"] for response in responses) == list(range(1, 201))
    async with session_factory() as session:
        assert await session.scalar(select(Post.views).where(Post.id == post["id"])) == 200
