from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PROJECT_ROOT
from app.models import Comment, Post, User
from app.seed import SEED_PASSWORD, seed
from app.seed.pipeline import made_ahead
from app.seed.world import Row, Table


async def test_seed_fills_every_table_with_usable_data(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    report = await seed(app.state.db.engine, users=60, posts=300, comments=700, random_seed=7)
    assert (report.users, report.posts, report.comments) == (60, 300, 700)
    async with session_factory() as session:
        counts = [await session.scalar(select(func.count()).select_from(model)) for model in (User, Post, Comment)]
        slugs = (await session.scalars(select(User.slug))).all()
        first = await session.scalar(select(User).order_by(User.id).limit(1))
    assert counts == [60, 300, 700]
    assert len(set(slugs)) == 60
    assert first is not None
    login = await client.post("/auth/token", data={"username": first.email, "password": SEED_PASSWORD})
    assert login.status_code == 200
    page = (await client.get("/posts?limit=100&include=total")).json()
    assert page["total"] == 300
    assert len(page["items"]) == 100
    # New rows after the seeded ones: the id sequences were moved past them.
    assert (
        await client.post(
            "/posts",
            json={"title": "t", "content": "c"},
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        )
    ).status_code == 201


async def test_seeded_data_is_varied_and_in_order_of_time(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    await seed(app.state.db.engine, users=50, posts=400, comments=1000, random_seed=5)
    async with session_factory() as session:
        users = (await session.execute(select(User.id, User.created_at, User.bio).order_by(User.id))).all()
        posts = (
            await session.execute(
                select(Post.id, Post.created_at, Post.author_id, Post.title, Post.content, Post.views).order_by(Post.id)
            )
        ).all()
        comments = (
            await session.execute(
                select(Comment.id, Comment.created_at, Comment.post_id, Comment.author_id, Comment.body).order_by(
                    Comment.id
                )
            )
        ).all()
    # Numbered in the order they were created; each post after its author, each comment after
    # its post and its author.
    for rows in (users, posts, comments):
        assert [row.created_at for row in rows] == sorted(row.created_at for row in rows)
    joined = {user.id: user.created_at for user in users}
    published = {post.id: post.created_at for post in posts}
    assert all(joined[post.author_id] <= post.created_at for post in posts)
    assert all(published[c.post_id] <= c.created_at and joined[c.author_id] <= c.created_at for c in comments)
    # Varied: many authors, posts commented on, lengths, views with a long tail, mostly unique text.
    assert len({post.author_id for post in posts}) > 30
    assert len({comment.post_id for comment in comments}) > 200
    assert len({post.title for post in posts}) > 390
    assert len({post.content for post in posts}) > 390
    assert len({comment.body for comment in comments}) > 990
    lengths = sorted(len(post.content) for post in posts)
    assert lengths[0] < 200
    assert lengths[-1] > 1000
    assert min(post.views for post in posts) == 0
    assert max(post.views for post in posts) > 500
    assert 10 < sum(user.bio is not None for user in users) < 40


async def test_seeding_again_adds_after_the_existing_rows(
    app: FastAPI,
    client: httpx.AsyncClient,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    engine = app.state.db.engine
    schema_before = await _schema(session_factory)
    await seed(engine, users=40, posts=100, comments=100, random_seed=1)
    # Few users next to those there (kept up in place on PostgreSQL), as many posts and comments
    # again (set aside and rebuilt there): both paths, on top of existing rows.
    loaded: dict[str, tuple[int, int]] = {}

    def report(table: str, rows: int, total: int) -> None:
        loaded[table] = (loaded.get(table, (0, total))[0] + rows, total)

    await seed(engine, users=5, posts=100, comments=300, random_seed=2, report=report)
    # What is reported adds up to this run's rows, table by table, in load order.
    assert list(loaded.items()) == [("users", (5, 5)), ("posts", (100, 100)), ("comments", (300, 300))]
    async with session_factory() as session:
        user_ids = (await session.scalars(select(User.id).order_by(User.id))).all()
        slugs = (await session.scalars(select(User.slug))).all()
        post_ids = (await session.scalars(select(Post.id).order_by(Post.id))).all()
        comment_ids = (await session.scalars(select(Comment.id).order_by(Comment.id))).all()
        authors = set((await session.scalars(select(Post.author_id).where(Post.id > 100))).all())
    assert user_ids == list(range(1, 46))
    assert len(set(slugs)) == 45
    assert post_ids == list(range(1, 201))
    assert comment_ids == list(range(1, 401))
    assert authors & set(range(1, 41)), "the earlier users write posts too"
    # Indexes and constraints came back as they were.
    assert await _schema(session_factory) == schema_before


# What differs from one run to the next: timestamps are placed relative to the moment of the run,
# and the one password hash is salted afresh.
_VARY = {"created_at", "updated_at", "password_hash"}


async def test_the_same_seed_gives_the_same_data(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async def everything() -> list[list[tuple[Any, ...]]]:
        tables = []
        async with session_factory() as session:
            for model in (User, Post, Comment):
                columns = [column for column in model.__table__.columns if column.name not in _VARY]
                tables.append([tuple(row) for row in await session.execute(select(*columns).order_by(model.id))])
        return tables

    await seed(app.state.db.engine, users=20, posts=50, comments=80, random_seed=3)
    first = await everything()
    async with session_factory() as session:
        for model in (Comment, Post, User):
            await session.execute(delete(model))
        await session.commit()
    await seed(app.state.db.engine, users=20, posts=50, comments=80, random_seed=3)
    assert await everything() == first
    assert [len(rows) for rows in first] == [20, 50, 80]


async def _schema(session_factory: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    """PostgreSQL's definitions of the three tables' indexes and constraints (empty elsewhere)."""
    async with session_factory() as session:
        if (await session.connection()).dialect.name != "postgresql":
            return []
        rows = await session.execute(
            text(
                """
                SELECT 'index', indexname, indexdef, true FROM pg_indexes
                WHERE tablename IN ('users', 'posts', 'comments')
                UNION ALL
                SELECT 'constraint', conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint
                WHERE conrelid IN ('users'::regclass, 'posts'::regclass, 'comments'::regclass)
                ORDER BY 1, 2
                """
            )
        )
        return [tuple(row) for row in rows]


def test_the_api_and_the_cli_import_no_seed_code() -> None:
    # A fresh interpreter: this one imported the seed package above.
    code = (
        "import json, sys\n"
        "import app.main\n"
        "def seed_modules(): return sorted(m for m in sys.modules if m == 'app.seed' or m.startswith('app.seed.'))\n"
        "served = seed_modules()\n"
        "import app.cli\n"
        "print(json.dumps([served, seed_modules()]))\n"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    served, for_the_help_text = json.loads(result.stdout)
    assert served == []
    # What the CLI's help text takes: the package's __init__, none of the code it names.
    assert for_the_help_text == ["app.seed"]


def _table(made: list[int], chunks: int, *, name: str = "t", fail_at: int | None = None) -> Table:
    """A table of `chunks` one-row chunks that records, in `made`, each chunk as it is made."""

    def generate() -> Iterator[list[Row]]:
        for number in range(chunks):
            if number == fail_at:
                raise RuntimeError(f"chunk {number} cannot be made")
            made.append(number)
            yield [(number,)]

    return Table(name, ("n",), chunks, generate())


async def test_rows_are_made_a_bounded_number_of_chunks_ahead() -> None:
    made: list[int] = []
    tables = [_table(made, 50), _table(made, 50)]
    async with made_ahead(tables, lambda _table, rows: rows, chunks={"t": 3}) as feeds:
        taken = [await anext(feeds[0])]
        await anyio.sleep(0.2)  # time enough for the worker to fill every place it has
        # Three waiting in the stream, one made and waiting for room, and the one taken.
        assert len(made) <= 5
        taken += [chunk for feed in feeds async for chunk in feed]
    assert taken == [(1, [(n,)]) for n in range(50)] * 2


async def test_a_chunk_that_cannot_be_made_fails_the_load_with_its_own_error() -> None:
    made: list[int] = []
    taken: list[tuple[str, int]] = []
    tables = [_table(made, 2, name="first"), _table(made, 50, name="second", fail_at=7)]

    async def load() -> None:
        async with made_ahead(tables, lambda _table, rows: rows, chunks={"first": 10, "second": 10}) as feeds:
            await anyio.sleep(0.2)  # time enough for the worker to get to the failure
            for table, feed in zip(tables, feeds, strict=True):
                async for _, rows in feed:
                    taken.append((table.name, rows[0][0]))

    with pytest.raises(RuntimeError, match="chunk 7 cannot be made"):  # as raised: no ExceptionGroup
        await load()
    # Where it happened: the table made before it came through whole, then the chunks before it.
    assert taken == [("first", 0), ("first", 1)] + [("second", n) for n in range(7)]


async def test_a_load_that_fails_stops_the_worker_and_keeps_its_own_error() -> None:
    made: list[int] = []

    async def load() -> None:
        async with made_ahead([_table(made, 1000)], lambda _table, rows: rows, chunks={"t": 3}) as feeds:
            await anext(feeds[0])
            raise LookupError("the database said no")

    with pytest.raises(LookupError, match="the database said no"):  # as raised: no ExceptionGroup
        await load()
    # The worker stopped at the next chunk it had made, before the block's end was passed on.
    stopped_at = len(made)
    await anyio.sleep(0.1)
    assert len(made) == stopped_at <= 6
