from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, func, select
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


async def test_the_same_seed_gives_the_same_data(
    app: FastAPI, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async def names() -> list[tuple[str, str]]:
        async with session_factory() as session:
            rows = await session.execute(
                select(User.name, Post.title).join(Post, Post.author_id == User.id).order_by(Post.id)
            )
            return [(name, title) for name, title in rows]

    await seed(app.state.db.engine, users=20, posts=50, comments=0, random_seed=3, quiet=True)
    first = await names()
    async with session_factory() as session:
        for model in (Comment, Post, User):
            await session.execute(delete(model))
        await session.commit()
    await seed(app.state.db.engine, users=20, posts=50, comments=0, random_seed=3, quiet=True)
    assert await names() == first
