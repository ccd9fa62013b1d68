from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.database import Connection
from app.models import Post
from app.users import repository as users_repository
from app.users.repository import UserFilter
from app.users.schemas import RECENT_POSTS, UserPublicWithPosts
from tests.conftest import Account, StatementCounter, insert_posts

ENVELOPE = {"items", "total", "skip", "limit", "next_cursor"}


async def listing(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ids(client: httpx.AsyncClient, url: str) -> list[int]:
    return [item["id"] for item in (await listing(client, url))["items"]]


async def walk(client: httpx.AsyncClient, url: str, *, max_pages: int = 500) -> list[int]:
    """Every id, page by page through next_cursor; fails (rather than loops) if a cursor repeats rows."""
    separator = "&" if "?" in url else "?"
    seen: list[int] = []
    body = await listing(client, url)
    for _ in range(max_pages):
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return seen
        body = await listing(client, f"{url}{separator}cursor={body['next_cursor']}")
        assert body["total"] is None
    raise AssertionError(f"no last page after {max_pages} pages: {seen[:20]}...")


async def test_envelope_defaults_and_authors(
    client: httpx.AsyncClient, alice: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    created = await insert_posts(session_factory, alice.id, 12)
    body = await listing(client, "/posts")
    assert set(body) == ENVELOPE
    assert (body["total"], body["skip"], body["limit"]) == (None, 0, 10)  # counting is opt-in
    assert (await listing(client, "/posts?include=total"))["total"] == 12
    assert [item["id"] for item in body["items"]] == created[::-1][:10]
    assert body["items"][0]["author"] == {"id": alice.id, "name": "Alice Smith"}
    assert body["next_cursor"] is not None
    last = await listing(client, "/posts?skip=10")
    assert [item["id"] for item in last["items"]] == created[::-1][10:]
    assert last["next_cursor"] is None


async def _spread(session_factory: async_sessionmaker[AsyncSession], post_ids: list[int]) -> None:
    """Give posts colliding sort values, so ties must be broken by id."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    async with session_factory() as session:
        for index, post_id in enumerate(post_ids):
            await session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(created_at=base + timedelta(minutes=index // 3), views=index % 4, title=f"Title {index % 5}")
            )
        await session.commit()


@pytest.mark.parametrize("order_by", ["created_at", "id", "views", "title"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_ordering_offset_and_cursor_agree(
    client: httpx.AsyncClient,
    alice: Account,
    session_factory: async_sessionmaker[AsyncSession],
    order_by: str,
    order: str,
) -> None:
    await _spread(session_factory, await insert_posts(session_factory, alice.id, 23))
    everything = (await listing(client, f"/posts?limit=100&order_by={order_by}&order={order}"))["items"]
    expected = sorted(everything, key=lambda item: (item[order_by], item["id"]), reverse=order == "desc")
    assert [item["id"] for item in everything] == [item["id"] for item in expected]
    by_offset = []
    for skip in range(0, 23, 5):
        by_offset += await ids(client, f"/posts?limit=5&skip={skip}&order_by={order_by}&order={order}")
    assert by_offset == [item["id"] for item in expected]
    assert await walk(client, f"/posts?limit=5&order_by={order_by}&order={order}") == by_offset


async def test_filters(client: httpx.AsyncClient, alice: Account, bob: Account, session_factory: Any) -> None:
    alice_posts = await insert_posts(session_factory, alice.id, 3, title="Gardening")
    bob_posts = await insert_posts(session_factory, bob.id, 2, title="Cooking 100%")
    assert sorted(await ids(client, f"/posts?author_id={alice.id}")) == alice_posts
    assert sorted(await ids(client, "/posts?q=cook")) == bob_posts
    assert sorted(await ids(client, "/posts?q=GARDEN")) == alice_posts
    assert sorted(await ids(client, "/posts?q=%25")) == bob_posts  # a literal %, not a wildcard
    assert await ids(client, f"/posts?author_id={alice.id}&q=cook") == []
    assert (await listing(client, "/posts?q=garden&limit=1&include=total"))["total"] == 3


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "skip=-1", "order_by=content", "order=sideways", "author_id=0", "author_id=x"],
)
async def test_bad_parameters_are_422(client: httpx.AsyncClient, query: str) -> None:
    assert (await client.get(f"/posts?{query}")).status_code == 422


async def test_bad_cursors_are_422(client: httpx.AsyncClient, alice: Account, session_factory: Any) -> None:
    await insert_posts(session_factory, alice.id, 4)
    cursor = (await listing(client, "/posts?limit=2"))["next_cursor"]
    body, _, signature = cursor.partition(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    for bad in ["garbage", f"{flipped}.{signature}", f"{body}.{signature[::-1]}", f"{body}."]:
        response = await client.get(f"/posts?cursor={bad}")
        assert response.status_code == 422, bad
    assert (await client.get(f"/posts?cursor={cursor}&order_by=views")).status_code == 422
    assert (await client.get(f"/posts?cursor={cursor}&order=asc")).status_code == 422
    assert (await client.get(f"/posts?cursor={cursor}&q=x")).status_code == 422
    assert (await client.get(f"/posts?cursor={cursor}&skip=2")).status_code == 422
    assert (await client.get(f"/posts?cursor={cursor}")).status_code == 200


async def test_cursor_walk_is_exact_while_posts_are_being_written(
    client: httpx.AsyncClient, alice: Account, bob: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    existing = await insert_posts(session_factory, alice.id, 250)
    walking = asyncio.Event()

    written: list[int] = []

    async def writer() -> None:
        await walking.wait()
        for i in range(40):
            response = await client.post("/posts", json={"title": f"New {i}", "content": "x"}, headers=bob.headers)
            written.append(response.json()["id"])
            await asyncio.sleep(0)

    async def walker() -> list[int]:
        seen: list[int] = []
        cursor = None
        for _ in range(100):  # 13 pages expected; a cursor that repeats rows must not loop forever
            url = "/posts?limit=20" + (f"&cursor={cursor}" if cursor else "")
            body = await listing(client, url)
            walking.set()
            seen += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                written_during_walk.append(len(written))
                return seen
            await asyncio.sleep(0.005)
        raise AssertionError("the walk never reached its last page")

    written_during_walk: list[int] = []
    seen, _ = await asyncio.gather(walker(), writer())
    assert written_during_walk[0] > 0, "the writer never overlapped the walk"
    assert len(seen) == len(set(seen)), "a post was listed twice"
    assert set(existing) <= set(seen), "a post that existed before the walk was skipped"
    assert [post_id for post_id in seen if post_id in set(existing)] == existing[::-1]
    assert len(written) == 40


async def test_a_users_posts(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, session_factory: Any
) -> None:
    mine = await insert_posts(session_factory, alice.id, 3)
    await insert_posts(session_factory, bob.id, 2)
    body = await listing(client, f"/users/{alice.id}/posts?include=total")
    assert set(body) == ENVELOPE
    assert [item["id"] for item in body["items"]] == mine[::-1]
    assert body["total"] == 3
    assert await walk(client, f"/users/{alice.id}/posts?limit=1&order=asc") == mine
    assert (await client.get("/users/2147483647/posts")).status_code == 404
    await client.patch(f"/users/{alice.id}", json={"is_active": False}, headers=admin.headers)
    assert (await client.get(f"/users/{alice.id}/posts")).status_code == 404
    assert (await client.get(f"/users/{alice.id}/posts", headers=admin.headers)).status_code == 200


async def test_users_include_their_five_most_recent_posts(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, session_factory: Any
) -> None:
    alice_posts = await insert_posts(session_factory, alice.id, 7)
    bob_posts = await insert_posts(session_factory, bob.id, 2)
    same_time = datetime.now(UTC) + timedelta(days=1)
    async with session_factory() as session:
        await session.execute(update(Post).where(Post.id.in_(alice_posts[-3:])).values(created_at=same_time))
        await session.commit()
    body = await listing(client, "/users?include=posts&order_by=id&order=asc")
    by_user = {item["id"]: item for item in body["items"]}
    # Newest first, ties broken by id (newest first too).
    assert [post["id"] for post in by_user[alice.id]["posts"]] == [
        *alice_posts[-3:][::-1],
        alice_posts[3],
        alice_posts[2],
    ]
    assert [post["id"] for post in by_user[bob.id]["posts"]] == bob_posts[::-1]
    assert by_user[admin.id]["posts"] == []
    assert set(by_user[alice.id]["posts"][0]) == {"id", "title", "views", "created_at"}
    assert "posts" not in (await listing(client, "/users"))["items"][0]
    assert (await client.get("/users?include=comments")).status_code == 422


async def test_recent_posts_keep_the_listing_order_filters_and_the_posts_own_timestamps(
    client: httpx.AsyncClient, new_account: Any, admin: Account, session_factory: Any
) -> None:
    # Names whose case-insensitive order differs from their ids' and from a byte-wise sort.
    names = ["bob Stone", "Alice Smith", "carol Brown", "Dave Jones"]
    accounts = [await new_account(name=name) for name in names]
    for i, account in enumerate(accounts):
        await insert_posts(session_factory, account.id, i + 1)
    by_name = [accounts[1].id, accounts[0].id, accounts[2].id, accounts[3].id]
    listed = await ids(client, "/users?include=posts&order_by=name&order=asc")
    assert [user_id for user_id in listed if user_id in by_name] == by_name
    for query in ("order_by=name&order=asc", "order_by=name&order=desc", "order_by=id", "order=asc&skip=1&limit=2"):
        plain = await ids(client, f"/users?{query}")
        assert await ids(client, f"/users?include=posts&{query}") == plain, query
    # A text filter builds its statement per request: the posts come along the same way.
    body = await listing(client, "/users?include=posts&q=sMiTh")
    assert [item["id"] for item in body["items"]] == [accounts[1].id]
    posts = body["items"][0]["posts"]
    assert len(posts) == 2
    for post in posts:
        read = (await client.get(f"/posts/{post['id']}")).json()
        assert post == {key: read[key] for key in ("id", "title", "views", "created_at")}
    # Admins see every listed user's email, posts included.
    body = await listing(client, "/users?include=posts&include=total&order_by=id&limit=2", headers=admin.headers)
    assert all("email" in item and "posts" in item for item in body["items"])
    assert body["total"] == len(accounts) + 1


@pytest.mark.backends("postgresql")
async def test_recent_posts_come_back_in_utc_whatever_the_sessions_time_zone(
    app: Any, client: httpx.AsyncClient, alice: Account, session_factory: Any
) -> None:
    # PostgreSQL builds the posts as JSON, where a timestamp is text in the session's zone.
    await insert_posts(session_factory, alice.id, 2)
    expected = await listing(client, "/users?include=posts")
    connection = Connection(app.state.db.gate)
    await connection.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
    try:
        users, _ = await users_repository.list_page(
            connection,
            UserFilter(),
            order_by="created_at",
            descending=True,
            skip=0,
            limit=10,
            with_total=False,
            recent_posts=RECENT_POSTS,
        )
    finally:
        await connection.execute(text("RESET TIME ZONE"))
        await connection.release()
    posts = [UserPublicWithPosts.model_validate(user).model_dump(mode="json")["posts"] for user in users]
    assert posts == [item["posts"] for item in expected["items"]]
    assert posts[0][0]["created_at"].endswith("Z")


LISTINGS = [
    "/posts?limit={n}",
    "/posts?limit={n}&cursor={cursor}",
    "/users/{author}/posts?limit={n}",
    "/posts/{post}/comments?limit={n}",
    "/users?limit={n}",
    "/users?include=posts&limit={n}",
]


@pytest.mark.parametrize("template", LISTINGS)
async def test_listings_run_a_fixed_number_of_statements(
    app: Any, client: httpx.AsyncClient, new_account: Any, session_factory: Any, template: str
) -> None:
    authors = [await new_account(name=f"Author {i}") for i in range(3)]
    for author in authors:
        await insert_posts(session_factory, author.id, 40)
    post_id = (await ids(client, "/posts?limit=1"))[0]
    for i in range(110):
        await client.post(f"/posts/{post_id}/comments", json={"body": f"c{i}"}, headers=authors[i % 3].headers)
    cursor = (await listing(client, "/posts?limit=1"))["next_cursor"]
    counts = {}
    for size in (1, 100):
        url = template.format(n=size, cursor=cursor, author=authors[0].id, post=post_id)
        async with StatementCounter(app.state.db) as counter:
            body = await listing(client, url)
        counts[size] = counter.count
        assert len(body["items"]) == size if size == 1 else len(body["items"]) > 1

    assert counts[1] == counts[100], counts
    assert counts[1] >= 1, counts  # the counter saw the listing's own statements


async def test_cursor_walk_over_rows_written_by_plain_sql(
    client: httpx.AsyncClient, alice: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Rows whose timestamps come from the database's own default walk like the app's rows."""
    api_posts = await insert_posts(session_factory, alice.id, 2)
    async with session_factory() as session:
        # One statement: the rows share one server-side timestamp, so only ids order them.
        await session.execute(
            text(
                "INSERT INTO posts (title, content, author_id) VALUES "
                "('sql 1', 'c', :a), ('sql 2', 'c', :a), ('sql 3', 'c', :a)"
            ),
            {"a": alice.id},
        )
        await session.commit()
    await insert_posts(session_factory, alice.id, 2)
    everything = await ids(client, "/posts?limit=100")
    assert len(everything) == 7
    assert set(api_posts) <= set(everything)
    for order in ("desc", "asc"):
        expected = await ids(client, f"/posts?limit=100&order={order}")
        assert await walk(client, f"/posts?limit=1&order={order}") == expected
        assert await walk(client, f"/posts?limit=2&order={order}") == expected


async def test_cursor_walk_by_long_non_ascii_titles(
    client: httpx.AsyncClient, alice: Account, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    titles = ["Ж" * 200, "🙂" * 200, "é" * 199 + "a"]
    async with session_factory() as session:
        session.add_all(Post(author_id=alice.id, title=title, content="c") for title in titles)
        await session.commit()
    expected = await ids(client, "/posts?limit=100&order_by=title")
    assert await walk(client, "/posts?limit=1&order_by=title") == expected


@pytest.mark.parametrize("cursor", ["abc.é", "é.é", "🙂", "a" * 2049])
async def test_non_ascii_or_oversized_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    assert (await client.get("/posts", params={"cursor": cursor})).status_code == 422
