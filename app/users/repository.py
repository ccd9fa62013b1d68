"""Every query on `users`. Flushes, never commits: the request's unit of work commits."""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    Index,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from app.database import AnyRow, row_dicts
from app.errors import Conflict
from app.integrity import violates_unique
from app.models import Base, Post, User
from app.users.errors import EmailTaken, UserNotFound
from app.users.schemas import UserListParams
from app.users.slugs import base_slug, candidates, fallback_slug


def _index(name: str) -> Index:
    return next(index for index in Base.metadata.tables["users"].indexes if index.name == name)


_EMAIL_INDEX = _index("ix_users_email")
_SLUG_INDEX = _index("ix_users_slug")
_SLUG_ATTEMPTS = 5
_SLUG_PROBE = 25


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def flush(session: AsyncSession) -> None:
    """Write pending changes; a duplicate email is EmailTaken (409), a user deleted meanwhile UserNotFound."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if violates_unique(exc, _EMAIL_INDEX):
            raise EmailTaken() from None
        raise
    except StaleDataError:
        raise UserNotFound() from None


async def free_slug(session: AsyncSession, base: str) -> str:
    """The first of `base`, `base-2`, ... not in use, probed a few dozen at a time by equality.

    (Listing every `base-...` instead would read without bound: think of every `user-<id>`.)
    """
    start = 1
    while True:
        batch = candidates(base, start, _SLUG_PROBE)
        taken = set((await session.scalars(select(User.slug).where(User.slug.in_(batch)))).all())
        for slug in batch:
            if slug not in taken:
                return slug
        start += _SLUG_PROBE


async def add(session: AsyncSession, user: User) -> User:
    """Insert a new user with the first free slug for its name ("alice-smith", "alice-smith-2", ...).

    A registration racing for the same slug makes the INSERT (or the UPDATE) fail; then it starts
    over. Starting over means rolling back: the failed statement spoiled the transaction, which
    holds nothing else (registering writes this one row).
    """
    base = base_slug(user.name)
    for _ in range(_SLUG_ATTEMPTS):
        try:
            # A nameless user's slug needs the id: a placeholder until the row has one.
            user.slug = await free_slug(session, base) if base else f"pending-{uuid.uuid4().hex}"
            session.add(user)
            await session.flush()
            if not base:
                slug = await free_slug(session, fallback_slug(user.id))
                # Replacing the placeholder is not an edit: updated_at stays equal to created_at.
                fill_in = update(User).where(User.id == user.id).values(slug=slug, updated_at=User.updated_at)
                await session.execute(fill_in.execution_options(synchronize_session=False))
                set_committed_value(user, "slug", slug)
        except IntegrityError as exc:
            if violates_unique(exc, _EMAIL_INDEX):
                raise EmailTaken() from None
            if not violates_unique(exc, _SLUG_INDEX):
                raise
            await session.rollback()
            continue
        return user
    raise Conflict("Too many registrations with this name at once; retry")


async def replace_password_hash(session: AsyncSession, user_id: int, *, old: str, new: str) -> bool:
    """Compare-and-set: False when the hash is no longer `old` (changed, or the user is gone)."""
    result = await session.execute(
        update(User).where(User.id == user_id, User.password_hash == old).values(password_hash=new)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_by_id(session: AsyncSession, user_id: int) -> bool:
    # A single DELETE: the database's ON DELETE CASCADE removes what the user owns, without the
    # ORM loading each dependent row first.
    result = await session.execute(delete(User).where(User.id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _filters(params: UserListParams) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = [User.is_active == params.is_active]
    if params.q:
        filters.append(User.name.icontains(params.q, autoescape=True))
    if params.is_admin is not None:
        filters.append(User.is_admin == params.is_admin)
    if params.email_domain:
        filters.append(or_(*(User.email.endswith(f"@{domain}", autoescape=True) for domain in params.email_domain)))
    return filters


# Reads: Core statements on the read connection of a GET request, rows instead of ORM objects.
# Built once; the values are bound per call, so SQLAlchemy's compiled-statement cache always hits.
_users: Table = User.__table__  # type: ignore[assignment]
_posts: Table = Post.__table__  # type: ignore[assignment]
_PROFILE_COLUMNS = [column for column in _users.c if column.key != "password_hash"]
_PROFILE_BY_ID = select(*_PROFILE_COLUMNS).where(_users.c.id == bindparam("user_id"))
_PROFILE_BY_SLUG = select(*_PROFILE_COLUMNS).where(_users.c.slug == bindparam("slug"))
_ACCOUNT_BY_ID = select(_users).where(_users.c.id == bindparam("user_id"))


async def read_profile(connection: AsyncConnection, user_id: int) -> AnyRow | None:
    return (await connection.execute(_PROFILE_BY_ID, {"user_id": user_id})).one_or_none()


async def read_profile_by_slug(connection: AsyncConnection, slug: str) -> AnyRow | None:
    return (await connection.execute(_PROFILE_BY_SLUG, {"slug": slug})).one_or_none()


async def read_account(connection: AsyncConnection, user_id: int) -> AnyRow | None:
    """The whole row, password hash included: what authenticating a token checks against."""
    return (await connection.execute(_ACCOUNT_BY_ID, {"user_id": user_id})).one_or_none()


def _ordering(columns: ReadOnlyColumnCollection[str, Any], order_by: str, order: str) -> list[ColumnElement[Any]]:
    """ORDER BY for the listing, over the users table or over a page drawn from it."""
    # Names sort case-insensitively, the same on every backend (their default collations disagree).
    key = func.lower(columns.name) if order_by == "name" else columns[order_by]
    return [key.desc(), columns.id.desc()] if order == "desc" else [key.asc(), columns.id.asc()]


def _sql_text(value: str) -> ColumnElement[str]:
    # A constant of this module, written into the statement's SQL rather than bound per call.
    # Never for a value from a request: quotes are doubled, but nothing else is escaped.
    return literal_column("'" + value.replace("'", "''") + "'")


# PostgreSQL's to_char pattern for an ISO 8601 UTC time with microseconds, as pydantic writes it.
_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _with_recent_posts(page: Select[Any], order_by: str, order: str, per_author: int) -> Select[Any]:
    """`page`, each user with a `posts` column: a JSON array of their newest posts (PostgreSQL).

    One statement instead of the page and then its users' posts: a round trip less, and about
    200 µs less CPU per request in the app (measured with 10 users of 5 posts each). Per user, an
    index range on (author_id, created_at, id) stopped after `per_author` rows, however many
    posts they have written. The times are written in UTC with a `Z` whatever the session's time
    zone, so they read back as the same datetimes every other endpoint returns.
    """
    listed = page.subquery("page")
    newest = (
        select(_posts.c.id, _posts.c.title, _posts.c.views, _posts.c.created_at)
        .where(_posts.c.author_id == listed.c.id)
        .order_by(_posts.c.created_at.desc(), _posts.c.id.desc())
        .limit(per_author)
        .correlate(listed)
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
    return select(*listed.c, select(posts).select_from(newest).scalar_subquery().label("posts")).order_by(
        *_ordering(listed.c, order_by, order)
    )


@functools.cache
def _plain_listing(order_by: str, order: str, *, by_admin_flag: bool, recent_posts: int) -> Select[Any]:
    """The listing without text filters, built once per shape: only values vary per request."""
    filters = [_users.c.is_active == bindparam("is_active")]
    if by_admin_flag:
        filters.append(_users.c.is_admin == bindparam("is_admin"))
    page = (
        select(*_PROFILE_COLUMNS)
        .where(*filters)
        .order_by(*_ordering(_users.c, order_by, order))
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    return _with_recent_posts(page, order_by, order, recent_posts) if recent_posts else page


def _listing(params: UserListParams, recent_posts: int) -> tuple[Select[Any], dict[str, Any]]:
    """The page's statement and the values to run it with."""
    if params.q or params.email_domain:
        # Text filters vary the SQL itself; built per request.
        page = (
            select(*_PROFILE_COLUMNS)
            .where(*_filters(params))
            .order_by(*_ordering(_users.c, params.order_by, params.order))
            .offset(params.skip)
            .limit(params.limit)
        )
        statement = _with_recent_posts(page, params.order_by, params.order, recent_posts) if recent_posts else page
        return statement, {}
    statement = _plain_listing(
        params.order_by, params.order, by_admin_flag=params.is_admin is not None, recent_posts=recent_posts
    )
    values = {"is_active": params.is_active, "is_admin": params.is_admin, "skip": params.skip, "limit": params.limit}
    return statement, values


async def list_page(
    connection: AsyncConnection, params: UserListParams, *, recent_posts: int = 0
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of profiles as dicts, and their total when the query asks for it.

    With `recent_posts`, each profile carries `posts`: the user's newest posts (as many), newest
    first, ties broken by id. PostgreSQL returns them with the page; MariaDB 10.11 and SQLite have
    no LATERAL and fetch them in a second statement, for the whole page at once.
    """
    in_one_statement = bool(recent_posts) and connection.dialect.name == "postgresql"
    statement, values = _listing(params, recent_posts if in_one_statement else 0)
    users = row_dicts((await connection.execute(statement, values)).all())
    if recent_posts and not in_one_statement:
        recent = await _recent_by_author(connection, [user["id"] for user in users], recent_posts)
        for user in users:
            user["posts"] = recent.get(user["id"], [])
    if not params.with_total:
        return users, None
    total = await connection.scalar(select(func.count()).select_from(_users).where(*_filters(params)))
    return users, total or 0


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


async def _recent_by_author(
    connection: AsyncConnection, author_ids: Sequence[int], per_author: int
) -> dict[int, list[dict[str, Any]]]:
    if not author_ids:
        return {}
    result = await connection.execute(_ranked_recent(per_author), {"author_ids": list(author_ids)})
    recent_posts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for post in row_dicts(result.all()):
        recent_posts[post["author_id"]].append(post)
    return recent_posts
