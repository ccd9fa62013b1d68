"""Post rules: who may change what, and how listings page. Never commits."""

from __future__ import annotations

import hashlib

from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Connection
from app.keyset import Position
from app.models import Post
from app.pagination import Slice, next_cursor, start_position
from app.posts import repository
from app.posts.errors import NotPostAuthor, PostNotFound
from app.posts.repository import ORDER_COLUMNS, PostFilter
from app.posts.schemas import POSTS, PostCreate, PostQuery, PostRead, PostUpdate
from app.viewer import Viewer, may_manage


async def create_post(connection: Connection, data: PostCreate, *, author: Viewer) -> PostRead:
    post = await repository.insert_post(connection, title=data.title, content=data.content, author_id=author.id)
    # The response shows the author: the caller, already known -- no query for it.
    post["author"] = {"id": author.id, "name": author.name}
    return PostRead.model_validate(post)


async def read_post(connection: Connection, post_id: int) -> PostRead:
    post = await repository.read(connection, post_id)
    if post is None:
        raise PostNotFound()
    return PostRead.model_validate(post)


async def ensure_exists(connection: Connection, post_id: int) -> None:
    if not await repository.exists(connection, post_id):
        raise PostNotFound()


async def update_post(session: AsyncSession, post_id: int, data: PostUpdate, *, viewer: Viewer) -> Post:
    post = await repository.get(session, post_id)
    if post is None:
        raise PostNotFound()
    if not may_manage(viewer, post.author_id):
        raise NotPostAuthor()
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(post, field, value)
    await repository.flush(session)
    return post


async def delete_post(session: AsyncSession, post_id: int, *, viewer: Viewer) -> None:
    author_id = await repository.get_author_id(session, post_id)
    if author_id is None:
        raise PostNotFound()
    if not may_manage(viewer, author_id):
        raise NotPostAuthor()
    if not await repository.delete_by_id(session, post_id):  # deleted by someone else meanwhile
        raise PostNotFound()


async def add_view(connection: Connection, post_id: int) -> int:
    views = await repository.increment_views(connection, post_id)
    if views is None:
        raise PostNotFound()
    return views


async def list_posts(
    connection: Connection, params: PostQuery, *, author_id: int | None, secret: str
) -> Slice[PostRead]:
    """One page by offset or cursor; the total only when asked for (see app.pagination)."""
    filters = PostFilter(author_id=author_id, q=params.q)
    scope = _cursor_scope(params, filters)
    start_after = start_position(params, scope=scope, secret=secret)
    posts, has_more = await repository.page(
        connection,
        filters=filters,
        order_by=params.order_by,
        descending=params.order == "desc",
        skip=params.skip,
        limit=params.limit,
        start_after=start_after,
    )
    total = await repository.count(connection, filters) if params.with_total else None
    sort_key = ORDER_COLUMNS[params.order_by].key
    last = Position(posts[-1][sort_key], posts[-1]["id"]) if has_more else None
    return Slice(POSTS.validate_python(posts), total, next_cursor(last, scope=scope, secret=secret))


def _cursor_scope(params: PostQuery, filters: PostFilter) -> str:
    # A cursor is only meaningful for the ordering and filters that produced it.
    query = hashlib.sha256((filters.q or "").encode()).hexdigest()[:12]
    return f"posts:{params.order_by}:{params.order}:{filters.author_id}:{query}"
