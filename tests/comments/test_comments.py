from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from app.models import Comment, Post, User
from tests.conftest import Account, StatementCounter, insert_posts
from tests.databases import ScratchDatabase

COMMENT_KEYS = {"id", "post_id", "author_id", "author", "body", "created_at", "updated_at"}


async def comment(client: httpx.AsyncClient, post_id: int, account: Account, body: str = "Nice post") -> dict[str, Any]:
    response = await client.post(f"/posts/{post_id}/comments", json={"body": body}, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
async def post_id(alice: Account, session_factory: async_sessionmaker[AsyncSession]) -> int:
    return (await insert_posts(session_factory, alice.id, 1))[0]


async def test_comment_on_a_post(client: httpx.AsyncClient, post_id: int, bob: Account) -> None:
    body = await comment(client, post_id, bob, "First!")
    assert set(body) == COMMENT_KEYS
    assert (body["post_id"], body["author_id"], body["body"]) == (post_id, bob.id, "First!")
    assert body["author"] == {"id": bob.id, "name": "Bob Jones"}


async def test_comment_rules(client: httpx.AsyncClient, post_id: int, bob: Account) -> None:
    url = f"/posts/{post_id}/comments"
    assert (await client.post(url, json={"body": "anonymous"})).status_code == 401
    assert (await client.post("/posts/2147483647/comments", json={"body": "x"}, headers=bob.headers)).status_code == 404
    for payload in (
        {"body": ""},
        {"body": "b" * 10_001},
        {"body": "x", "author_id": 1},
        {"body": "x", "post_id": 9},
        {},
    ):
        assert (await client.post(url, json=payload, headers=bob.headers)).status_code == 422, payload
    assert (await client.post(url, json={"body": "b" * 10_000}, headers=bob.headers)).status_code == 201


async def test_comments_are_listed_oldest_first(
    client: httpx.AsyncClient, post_id: int, alice: Account, bob: Account
) -> None:
    written = [(await comment(client, post_id, [alice, bob][i % 2], f"c{i}"))["id"] for i in range(7)]
    body = (await client.get(f"/posts/{post_id}/comments?limit=5&include=total")).json()
    assert set(body) == {"items", "total", "skip", "limit", "next_cursor"}
    assert [item["id"] for item in body["items"]] == written[:5]
    assert body["total"] == 7
    rest = (await client.get(f"/posts/{post_id}/comments?cursor={body['next_cursor']}&limit=5")).json()
    # A cursor page counts too when asked, the count being of all the post's comments.
    counted = f"/posts/{post_id}/comments?cursor={body['next_cursor']}&limit=5&include=total"
    assert (await client.get(counted)).json()["total"] == 7
    assert [item["id"] for item in rest["items"]] == written[5:]
    assert rest["total"] is None
    assert rest["next_cursor"] is None
    offset = (await client.get(f"/posts/{post_id}/comments?skip=5")).json()
    assert [item["id"] for item in offset["items"]] == written[5:]
    assert (await client.get("/posts/2147483647/comments")).status_code == 404
    assert (await client.get(f"/posts/{post_id}/comments?limit=101")).status_code == 422
    other_post = (await client.post("/posts", json={"title": "T", "content": "C"}, headers=bob.headers)).json()["id"]
    foreign = await client.get(f"/posts/{other_post}/comments?cursor={body['next_cursor']}")
    assert foreign.status_code == 422


async def test_a_page_of_comments_is_one_statement_and_a_missing_post_still_404(
    app: FastAPI, client: httpx.AsyncClient, post_id: int, bob: Account
) -> None:
    for i in range(3):
        await comment(client, post_id, bob, f"c{i}")
    async with StatementCounter(app.state.db) as counter:
        page = await client.get(f"/posts/{post_id}/comments?limit=2")
    assert page.status_code == 200
    assert len(page.json()["items"]) == 2
    assert counter.count == 1  # the rows prove the post exists: no separate check

    # An empty page asks whether the post exists: 200 for an existing post, 404 for a missing one.
    empty = await client.get(f"/posts/{post_id}/comments?skip=50")
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    assert (await client.get("/posts/2147483647/comments?skip=50")).status_code == 404
    # A missing post is a 404 whatever the cursor; an existing post with a bad cursor is a 422.
    assert (await client.get("/posts/2147483647/comments?cursor=bogus")).status_code == 404
    assert (await client.get(f"/posts/{post_id}/comments?cursor=bogus")).status_code == 422


async def test_edit_authorization_matrix(
    client: httpx.AsyncClient, post_id: int, alice: Account, bob: Account, new_account: Any, admin: Account
) -> None:
    carol = await new_account(name="Carol")
    note = await comment(client, post_id, bob)
    url = f"/comments/{note['id']}"
    assert (await client.patch(url, json={"body": "x"})).status_code == 401
    assert (await client.patch(url, json={"body": "x"}, headers=carol.headers)).status_code == 403
    # The post's author may delete a comment, but not put words in its author's mouth.
    assert (await client.patch(url, json={"body": "x"}, headers=alice.headers)).status_code == 403
    by_owner = await client.patch(url, json={"body": "Edited"}, headers=bob.headers)
    assert by_owner.status_code == 200
    assert by_owner.json()["body"] == "Edited"
    assert by_owner.json()["author"] == {"id": bob.id, "name": "Bob Jones"}
    by_admin = await client.patch(url, json={"body": "Moderated"}, headers=admin.headers)
    assert by_admin.json()["body"] == "Moderated"
    for payload in ({"body": ""}, {"body": None}, {}, {"body": "x", "post_id": 1}):
        assert (await client.patch(url, json=payload, headers=bob.headers)).status_code == 422, payload
    assert (await client.patch("/comments/2147483647", json={"body": "x"}, headers=admin.headers)).status_code == 404


async def test_delete_authorization_matrix(
    client: httpx.AsyncClient, post_id: int, alice: Account, bob: Account, new_account: Any, admin: Account
) -> None:
    carol = await new_account(name="Carol")
    by_owner, by_post_author, by_admin = [await comment(client, post_id, bob) for _ in range(3)]
    url = f"/comments/{by_owner['id']}"
    assert (await client.delete(url)).status_code == 401
    assert (await client.delete(url, headers=carol.headers)).status_code == 403
    for note, account in ((by_owner, bob), (by_post_author, alice), (by_admin, admin)):
        response = await client.delete(f"/comments/{note['id']}", headers=account.headers)
        assert response.status_code == 200
        assert response.json() == {"deleted": note["id"]}
    assert (await client.get(f"/posts/{post_id}/comments?include=total")).json()["total"] == 0
    assert (await client.delete(url, headers=admin.headers)).status_code == 404


async def _count(session_factory: async_sessionmaker[AsyncSession], model: type[Any], *where: Any) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_deleting_a_user_deletes_their_posts_and_comments_everywhere(
    client: httpx.AsyncClient, alice: Account, bob: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    alice_post = (await insert_posts(session_factory, alice.id, 1))[0]
    bob_post = (await insert_posts(session_factory, bob.id, 1))[0]
    await comment(client, alice_post, bob)  # on alice's post: goes with her post
    await comment(client, bob_post, alice)  # alice's, on bob's post: goes with her
    kept = await comment(client, bob_post, bob)
    assert (await client.delete(f"/users/{alice.id}", headers=alice.headers)).status_code == 200
    assert await _count(session_factory, Post, Post.author_id == alice.id) == 0
    assert await _count(session_factory, Comment) == 1
    assert (await client.get(f"/posts/{bob_post}/comments")).json()["items"][0]["id"] == kept["id"]


async def test_database_cascades_for_any_client(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    backend: ScratchDatabase,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Deletes straight in the database, from a plain connection that is not the app's.

    On SQLite such a connection has foreign keys off, as the sqlite3 shell would.
    """
    first, second = await insert_posts(session_factory, alice.id, 2)
    for post in (first, second):
        await comment(client, post, bob)
    await comment(client, second, alice)
    outsider = create_async_engine(backend.own_url)
    try:
        async with outsider.begin() as connection:
            await connection.execute(delete(Post).where(Post.id == first))
        assert await _count(session_factory, Comment, Comment.post_id == first) == 0
        assert await _count(session_factory, Comment, Comment.post_id == second) == 2
        async with outsider.begin() as connection:
            await connection.execute(delete(User).where(User.id == alice.id))
    finally:
        await outsider.dispose()
    assert await _count(session_factory, Post) == 0
    assert await _count(session_factory, Comment) == 0


async def test_commenting_on_a_post_deleted_meanwhile_is_404(
    client: httpx.AsyncClient, alice: Account, bob: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    post = (await insert_posts(session_factory, alice.id, 1))[0]
    assert (await client.delete(f"/posts/{post}", headers=alice.headers)).status_code == 200
    response = await client.post(f"/posts/{post}/comments", json={"body": "late"}, headers=bob.headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Post not found", "code": "not_found"}


@pytest.fixture
def deleted_before_flush() -> Iterator[list[Any]]:
    """Rows to delete just before the next flush: another client's delete landing mid-request."""
    doomed: list[Any] = []

    def delete_first(session: Session, *args: object) -> None:
        while doomed:
            row = doomed.pop()
            statement = delete(type(row)).where(type(row).id == row.id)
            # Unknown to the session, as another client's delete would be.
            session.execute(statement.execution_options(synchronize_session=False))

    event.listen(Session, "before_flush", delete_first)
    yield doomed
    event.remove(Session, "before_flush", delete_first)


async def test_editing_something_deleted_meanwhile_is_404(
    client: httpx.AsyncClient, post_id: int, alice: Account, bob: Account, deleted_before_flush: list[Any]
) -> None:
    note = await comment(client, post_id, bob)
    deleted_before_flush.append(Comment(id=note["id"]))
    response = await client.patch(f"/comments/{note['id']}", json={"body": "too late"}, headers=bob.headers)
    assert response.status_code == 404
    deleted_before_flush.append(Post(id=post_id))
    response = await client.patch(f"/posts/{post_id}", json={"title": "too late"}, headers=alice.headers)
    assert response.status_code == 404
    deleted_before_flush.append(User(id=bob.id))
    response = await client.patch(f"/users/{bob.id}", json={"name": "too late"}, headers=bob.headers)
    assert response.status_code == 404
