"""Every query on `posts`. Receives the session or connection it runs on; never commits.

Reads and one-statement writes run on the request's autocommit connection, with Core statements
built once whose rows become dicts; edits and deletes go through the unit of work's session.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    ForeignKeyConstraint,
    Integer,
    ScalarSelect,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm.exc import StaleDataError

from app.database import Connection
from app.integrity import violates_foreign_key
from app.keyset import Position, after
from app.models import Post, User
from app.posts.errors import AuthorGone, PostNotFound
from app.rows import row_dicts, with_author
from app.sql import ESCAPE, escape_like

ORDER_COLUMNS: dict[str, Any] = {
    "created_at": Post.created_at,
    "id": Post.id,
    "views": Post.views,
    "title": Post.title,
}


@dataclass(frozen=True, slots=True)
class PostFilter:
    author_id: int | None = None
    q: str | None = None  # part of the title, matched literally and case-insensitively

    def values(self) -> dict[str, Any]:
        return {"author_id": self.author_id, "q": escape_like(self.q) if self.q else None}


async def get(session: AsyncSession, post_id: int) -> Post | None:
    # Posts are always shown with their author's id and name: one join, not a query per post.
    query = select(Post).join(Post.author).options(contains_eager(Post.author).load_only(User.id, User.name))
    return (await session.scalars(query.where(Post.id == post_id))).one_or_none()


async def get_author_id(session: AsyncSession, post_id: int) -> int | None:
    return await session.scalar(select(Post.author_id).where(Post.id == post_id))


async def flush(session: AsyncSession) -> None:
    """Write pending changes; a post deleted meanwhile (the UPDATE finds no row) is PostNotFound."""
    try:
        await session.flush()
    except StaleDataError:
        raise PostNotFound() from None


async def delete_by_id(session: AsyncSession, post_id: int) -> bool:
    # The database's ON DELETE CASCADE removes the comments.
    result = await session.execute(delete(Post).where(Post.id == post_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


_posts: Table = Post.__table__  # type: ignore[assignment]
_users: Table = User.__table__  # type: ignore[assignment]
_BY_ID = (
    select(*_posts.c, _users.c.name.label("author_name"))
    .join_from(_posts, _users, _posts.c.author_id == _users.c.id)
    .where(_posts.c.id == bindparam("post_id"))
)
_EXISTS = select(_posts.c.id).where(_posts.c.id == bindparam("post_id"))


async def read(connection: Connection, post_id: int) -> dict[str, Any] | None:
    """The post with its `author` ({id, name}), or None."""
    posts = with_author((await connection.execute(_BY_ID, {"post_id": post_id})).all())
    return posts[0] if posts else None


async def exists(connection: Connection, post_id: int) -> bool:
    return (await connection.execute(_EXISTS, {"post_id": post_id})).first() is not None


_AUTHOR_FOREIGN_KEY: ForeignKeyConstraint = next(
    fk for fk in _posts.foreign_key_constraints if fk.referred_table.name == "users"
)
_INSERT = insert(_posts)


async def insert_post(connection: Connection, *, title: str, content: str, author_id: int) -> dict[str, Any]:
    """Insert a post and return its row (without the author's name); an author deleted meanwhile
    is AuthorGone.

    One INSERT ... RETURNING where the database has it (PostgreSQL, SQLite, MariaDB). Elsewhere
    (MySQL) the INSERT, committed on its own, and then a read of the row it made.
    """
    values = {"title": title, "content": content, "author_id": author_id}
    try:
        if connection.dialect.insert_returning:
            rows = (await connection.execute(_INSERT.returning(*_posts.c), values)).all()
        else:
            post_id = (await connection.execute(_INSERT, values)).lastrowid
            rows = (await connection.execute(select(_posts).where(_posts.c.id == post_id))).all()
    except IntegrityError as exc:
        if violates_foreign_key(exc, _AUTHOR_FOREIGN_KEY):
            raise AuthorGone() from None
        raise
    if not rows:  # MySQL: deleted between the INSERT and the read, with its author most likely
        raise AuthorGone()
    return row_dicts(rows)[0]


# updated_at tracks edits, not reads: the UPDATE keeps it as it was.
_ADD_VIEW = update(_posts).where(_posts.c.id == bindparam("post_id")).values(updated_at=_posts.c.updated_at)
_ADD_VIEW_RETURNING = _ADD_VIEW.values(views=_posts.c.views + 1).returning(_posts.c.views)
# MariaDB has no UPDATE ... RETURNING. LAST_INSERT_ID(expr) stores the new count in the
# connection's own last-insert id, which the server returns with the UPDATE's result: still one
# statement, exact under any concurrency, no transaction to hold the row for a second read.
_ADD_VIEW_LAST_ID = _ADD_VIEW.values(views=func.last_insert_id(_posts.c.views + 1))


async def increment_views(connection: Connection, post_id: int) -> int | None:
    """Add one view in the database itself; the new count, or None when the post is absent."""
    values = {"post_id": post_id}
    if connection.dialect.update_returning:
        views: int | None = await connection.scalar(_ADD_VIEW_RETURNING, values)
        return views
    result = await connection.execute(_ADD_VIEW_LAST_ID, values)
    return int(result.lastrowid) if result.rowcount else None


@functools.cache
def _listing(order_by: str, *, descending: bool, by_author: bool, search: bool, after_cursor: bool) -> Select[Any]:
    """A page of posts with their authors' names; built once per shape, only values vary per request.

    The page's ids come first, then its posts and their authors (a "deferred join"): the ids come
    from the ordering's index alone, so an offset skips index entries instead of fetching whole
    posts and joining their authors (BENCHMARKS.md, "Where the time goes").
    """
    column = _posts.c[ORDER_COLUMNS[order_by].key]
    clauses = _clauses(by_author=by_author, search=search)
    if after_cursor:
        value, last_id = bindparam("cursor_value", type_=column.type), bindparam("cursor_id", type_=Integer)
        clauses.append(after(column, _posts.c.id, value, last_id, descending=descending))
    ordering = (column.desc(), _posts.c.id.desc()) if descending else (column.asc(), _posts.c.id.asc())
    ids = (
        select(_posts.c.id)
        .where(*clauses)
        .order_by(*ordering)
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
        .subquery("page")
    )
    return (
        select(*_posts.c, _users.c.name.label("author_name"))
        .select_from(ids)
        .join(_posts, _posts.c.id == ids.c.id)
        .join(_users, _posts.c.author_id == _users.c.id)
        .order_by(*ordering)
    )


def _clauses(*, by_author: bool, search: bool) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if by_author:
        clauses.append(_posts.c.author_id == bindparam("author_id"))
    if search:
        clauses.append(_posts.c.title.icontains(bindparam("q"), escape=ESCAPE))
    return clauses


async def page(
    connection: Connection,
    *,
    filters: PostFilter,
    order_by: str,
    descending: bool,
    skip: int,
    limit: int,
    start_after: Position | None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of posts with their `author`, and whether more follow."""
    statement = _listing(
        order_by,
        descending=descending,
        by_author=filters.author_id is not None,
        search=bool(filters.q),
        after_cursor=start_after is not None,
    )
    # One row more than asked says whether there is a next page, without counting.
    values = filters.values() | {"skip": skip, "limit": limit + 1}
    if start_after is not None:
        values |= {"cursor_value": start_after.value, "cursor_id": start_after.id}
    posts = (await connection.execute(statement, values)).all()
    return with_author(posts[:limit]), len(posts) > limit


@functools.cache
def _count(*, by_author: bool, search: bool) -> Select[Any]:
    return select(func.count()).select_from(_posts).where(*_clauses(by_author=by_author, search=search))


async def count(connection: Connection, filters: PostFilter) -> int:
    statement = _count(by_author=filters.author_id is not None, search=bool(filters.q))
    return await connection.scalar(statement, filters.values()) or 0


def _sql_text(value: str) -> ColumnElement[str]:
    # A constant of this module, written into the statement's SQL rather than bound per call.
    # Never for a value from a request: quotes are doubled, but nothing else is escaped.
    return literal_column("'" + value.replace("'", "''") + "'")


# PostgreSQL's to_char pattern for an ISO 8601 UTC time with microseconds, as pydantic writes it.
_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def recent_posts_json(author_id: ColumnElement[int], *, per_author: int) -> ScalarSelect[Any]:
    """PostgreSQL: a JSON array of the newest posts of the author `author_id` (a column of the
    enclosing statement), each {id, title, views, created_at}, newest first, ties by id.

    Beside a page of users, one statement instead of the page and then its users' posts: a round
    trip and a statement's worth of CPU less (README, "Speed decisions"). Per user, an index range
    on (author_id, created_at, id) stopped after `per_author` rows. The times are written in UTC
    with a `Z` whatever the session's time zone, so they read back as the same datetimes every
    other endpoint returns.
    """
    newest = (
        select(_posts.c.id, _posts.c.title, _posts.c.views, _posts.c.created_at)
        .where(_posts.c.author_id == author_id)
        .order_by(_posts.c.created_at.desc(), _posts.c.id.desc())
        .limit(per_author)
        .correlate_except(_posts)
        .lateral("newest")
    )
    created_at = func.to_char(func.timezone(_sql_text("UTC"), newest.c.created_at), _sql_text(_ISO_UTC))
    post = func.json_build_object(
        *(item for name in ("id", "title", "views") for item in (_sql_text(name), newest.c[name])),
        _sql_text("created_at"),
        created_at,
    )
    newest_first = aggregate_order_by(post, newest.c.created_at.desc(), newest.c.id.desc())
    posts = func.coalesce(func.json_agg(newest_first), _sql_text("[]"), type_=JSON)
    return select(posts).select_from(newest).scalar_subquery()


@functools.cache
def _ranked_recent(per_author: int) -> Select[Any]:
    """Each listed author's newest posts, for the authors bound as `author_ids`; built once."""
    newest_first = (_posts.c.created_at.desc(), _posts.c.id.desc())
    rank = func.row_number().over(partition_by=_posts.c.author_id, order_by=newest_first).label("rank")
    author_ids: BindParameter[int] = bindparam("author_ids", expanding=True)
    ranked = (
        select(_posts.c.author_id, _posts.c.id, _posts.c.title, _posts.c.views, _posts.c.created_at, rank)
        .where(_posts.c.author_id.in_(author_ids))
        .subquery()
    )
    return (
        select(ranked.c.author_id, ranked.c.id, ranked.c.title, ranked.c.views, ranked.c.created_at)
        .where(ranked.c.rank <= per_author)
        .order_by(ranked.c.author_id, ranked.c.rank)
    )


async def recent_by_author(
    connection: Connection, author_ids: Sequence[int], *, per_author: int
) -> dict[int, list[dict[str, Any]]]:
    """The newest posts of each of `author_ids` (as many as `per_author`), in one statement."""
    if not author_ids:
        return {}
    result = await connection.execute(_ranked_recent(per_author), {"author_ids": list(author_ids)})
    recent: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for post in row_dicts(result.all()):
        recent[post["author_id"]].append(post)
    return recent
