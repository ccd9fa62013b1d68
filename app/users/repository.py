"""Every query on `users`. Receives the session or connection it runs on; never commits."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Index, Integer, Select, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from app.database import Connection
from app.errors import Conflict
from app.integrity import violates_unique
from app.models import Base, User
from app.posts import repository as posts
from app.rows import row_dict, row_dicts
from app.sql import ESCAPE, escape_like
from app.users.errors import EmailTaken, UserNotFound
from app.users.slugs import base_slug, candidates, fallback_slug


def _index(name: str) -> Index:
    return next(index for index in Base.metadata.tables["users"].indexes if index.name == name)


_EMAIL_INDEX = _index("ix_users_email")
_SLUG_INDEX = _index("ix_users_slug")
# Registrations racing for one name all read the same first free slug, and only one of them
# gets it per round: N at once need up to N rounds, so this bounds the concurrency we absorb.
_SLUG_ATTEMPTS = 32
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

    A registration racing for the same slug makes the INSERT (or the UPDATE) fail; then this one
    starts over from a SAVEPOINT, so whatever else the unit of work holds is kept.
    """
    base = base_slug(user.name)
    for _ in range(_SLUG_ATTEMPTS):
        try:
            async with session.begin_nested():
                await _insert_with_slug(session, user, base)
        except IntegrityError as exc:
            if violates_unique(exc, _EMAIL_INDEX):
                raise EmailTaken() from None
            if not violates_unique(exc, _SLUG_INDEX):
                raise
            continue
        return user
    raise Conflict("Too many registrations with this name at once; retry")


async def _insert_with_slug(session: AsyncSession, user: User, base: str) -> None:
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


async def delete_by_id(session: AsyncSession, user_id: int) -> bool:
    # A single DELETE: the database's ON DELETE CASCADE removes what the user owns, without the
    # ORM loading each dependent row first.
    result = await session.execute(delete(User).where(User.id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# Reads: Core statements on the request's autocommit connection, rows as dicts instead of ORM
# objects. Built once; the values are bound per call, so SQLAlchemy's compiled-statement cache
# always hits.
_users: Table = User.__table__  # type: ignore[assignment]
_PROFILE_COLUMNS = [column for column in _users.c if column.key != "password_hash"]
_PROFILE_BY_ID = select(*_PROFILE_COLUMNS).where(_users.c.id == bindparam("user_id"))
_PROFILE_BY_SLUG = select(*_PROFILE_COLUMNS).where(_users.c.slug == bindparam("slug"))


async def read_profile(connection: Connection, user_id: int) -> dict[str, Any] | None:
    return row_dict((await connection.execute(_PROFILE_BY_ID, {"user_id": user_id})).one_or_none())


async def read_profile_by_slug(connection: Connection, slug: str) -> dict[str, Any] | None:
    return row_dict((await connection.execute(_PROFILE_BY_SLUG, {"slug": slug})).one_or_none())


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Which users a listing shows; text is matched literally, case-insensitively."""

    is_active: bool = True
    is_admin: bool | None = None
    name_contains: str | None = None
    email_domains: tuple[str, ...] = ()

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"is_active": self.is_active, "is_admin": self.is_admin}
        if self.name_contains:
            values["q"] = escape_like(self.name_contains)
        for i, domain in enumerate(self.email_domains):
            values[f"domain_{i}"] = escape_like(f"@{domain}")
        return values


@dataclass(frozen=True, slots=True)
class _Shape:
    """What of a filter changes the SQL itself (the values are bound)."""

    by_admin_flag: bool
    search: bool
    domains: int

    @classmethod
    def of(cls, filters: UserFilter) -> _Shape:
        return cls(filters.is_admin is not None, bool(filters.name_contains), len(filters.email_domains))


def _clauses(shape: _Shape) -> list[ColumnElement[bool]]:
    clauses = [_users.c.is_active == bindparam("is_active")]
    if shape.by_admin_flag:
        clauses.append(_users.c.is_admin == bindparam("is_admin"))
    if shape.search:
        clauses.append(_users.c.name.icontains(bindparam("q"), escape=ESCAPE))
    if shape.domains:
        endings = (_users.c.email.endswith(bindparam(f"domain_{i}"), escape=ESCAPE) for i in range(shape.domains))
        clauses.append(or_(*endings))
    return clauses


def _ordering(columns: ReadOnlyColumnCollection[str, Any], order_by: str, *, descending: bool) -> list[Any]:
    """ORDER BY for the listing, over the users table or over a page drawn from it."""
    # Names sort case-insensitively, the same on every backend (their default collations disagree).
    key = func.lower(columns.name) if order_by == "name" else columns[order_by]
    return [key.desc(), columns.id.desc()] if descending else [key.asc(), columns.id.asc()]


def _build_listing(order_by: str, descending: bool, shape: _Shape, recent_posts: int) -> Select[Any]:
    page = (
        select(*_PROFILE_COLUMNS)
        .where(*_clauses(shape))
        .order_by(*_ordering(_users.c, order_by, descending=descending))
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    if not recent_posts:
        return page
    # PostgreSQL: each user's newest posts as a JSON array beside the page, in one statement.
    listed = page.subquery("page")
    posts_column = posts.recent_posts_json(listed.c.id, per_author=recent_posts).label("posts")
    return select(*listed.c, posts_column).order_by(*_ordering(listed.c, order_by, descending=descending))


def _build_count(shape: _Shape) -> Select[Any]:
    return select(func.count()).select_from(_users).where(*_clauses(shape))


# Statements are built once per shape; only values vary per request. The number of email domains
# is part of the shape: beyond a few, built per request rather than kept, so that no request can
# fill the cache with giant statements.
_CACHED_DOMAINS = 8
_cached_listing = functools.cache(_build_listing)
_cached_count = functools.cache(_build_count)


def _listing(order_by: str, descending: bool, shape: _Shape, recent_posts: int) -> Select[Any]:
    build = _build_listing if shape.domains > _CACHED_DOMAINS else _cached_listing
    return build(order_by, descending, shape, recent_posts)


def _count(shape: _Shape) -> Select[Any]:
    return (_build_count if shape.domains > _CACHED_DOMAINS else _cached_count)(shape)


async def list_page(
    connection: Connection,
    filters: UserFilter,
    *,
    order_by: str,
    descending: bool,
    skip: int,
    limit: int,
    with_total: bool,
    recent_posts: int = 0,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of profiles as dicts, and their total when asked for.

    With `recent_posts`, each profile carries `posts`: the user's newest posts (as many), newest
    first, ties broken by id. PostgreSQL returns them with the page; MariaDB 10.11 and SQLite
    have no LATERAL and fetch them in a second statement, for the whole page at once.
    """
    in_one_statement = bool(recent_posts) and connection.dialect.name == "postgresql"
    shape = _Shape.of(filters)
    statement = _listing(order_by, descending, shape, recent_posts if in_one_statement else 0)
    values = filters.values()
    users = row_dicts((await connection.execute(statement, values | {"skip": skip, "limit": limit})).all())
    if recent_posts and not in_one_statement:
        recent = await posts.recent_by_author(connection, [user["id"] for user in users], per_author=recent_posts)
        for user in users:
            user["posts"] = recent.get(user["id"], [])
    if not with_total:
        return users, None
    return users, await connection.scalar(_count(shape), values) or 0
