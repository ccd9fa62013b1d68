from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Comment, Post, User
from app.seed import SEED_PASSWORD, seed


async def test_seed_fills_every_table_with_usable_data(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    report = await seed(app.state.db.engine, users=60, posts=300, comments=700, random_seed=7, quiet=True)
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
    await seed(app.state.db.engine, users=50, posts=400, comments=1000, random_seed=5, quiet=True)
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
    capsys: pytest.CaptureFixture[str],
) -> None:
    engine = app.state.db.engine
    schema_before = await _schema(session_factory)
    await seed(engine, users=40, posts=100, comments=100, random_seed=1, quiet=True)
    # Few users next to those there (kept up in place on PostgreSQL), as many posts and comments
    # again (set aside and rebuilt there): both paths, on top of existing rows.
    await seed(engine, users=5, posts=100, comments=300, random_seed=2)
    # Not a terminal: one final line per table.
    progress = [line.split() for line in capsys.readouterr().err.replace("\r", "").splitlines()]
    assert progress == [["users", "5/5"], ["posts", "100/100"], ["comments", "300/300"]]
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

    await seed(app.state.db.engine, users=20, posts=50, comments=80, random_seed=3, quiet=True)
    first = await everything()
    async with session_factory() as session:
        for model in (Comment, Post, User):
            await session.execute(delete(model))
        await session.commit()
    await seed(app.state.db.engine, users=20, posts=50, comments=80, random_seed=3, quiet=True)
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
