"""Every query on `users`. Flushes, never commits: the request's unit of work commits."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Index, Integer, Select, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from app.database import AnyRow
from app.errors import Conflict
from app.integrity import violates_unique
from app.models import Base, User
from app.users.errors import EmailTaken, UserNotFound
from app.users.schemas import UserListParams
from app.users.slugs import base_slug, candidates, fallback_slug


def _index(name: str) -> Index:
    return next(index for index in Base.metadata.tables["users"].indexes if index.name == name)


_EMAIL_INDEX = _index("ix_users_email")
_SLUG_INDEX = _index("ix_users_slug")
_SLUG_ATTEMPTS = 5
_SLUG_PROBE = 25

# Names sort case-insensitively, the same on every backend (their default collations disagree).
_ORDER_COLUMNS: dict[str, Any] = {"id": User.id, "created_at": User.created_at, "name": func.lower(User.name)}


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


@functools.cache
def _plain_listing(order_by: str, order: str, *, by_admin_flag: bool) -> Select[Any]:
    """The listing without text filters, built once per ordering: only values vary per request."""
    column = _ORDER_COLUMNS[order_by]
    ordering = (column.desc(), _users.c.id.desc()) if order == "desc" else (column.asc(), _users.c.id.asc())
    filters = [_users.c.is_active == bindparam("is_active")]
    if by_admin_flag:
        filters.append(_users.c.is_admin == bindparam("is_admin"))
    return (
        select(*_PROFILE_COLUMNS)
        .where(*filters)
        .order_by(*ordering)
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )


async def list_page(connection: AsyncConnection, params: UserListParams) -> tuple[Sequence[AnyRow], int | None]:
    """A page of profiles, and their total when the query asks for it."""
    if params.q or params.email_domain:
        column = _ORDER_COLUMNS[params.order_by]
        ordering = (column.desc(), User.id.desc()) if params.order == "desc" else (column.asc(), User.id.asc())
        statement = select(*_PROFILE_COLUMNS).where(*_filters(params)).order_by(*ordering)
        users = (await connection.execute(statement.offset(params.skip).limit(params.limit))).all()
    else:
        page = _plain_listing(params.order_by, params.order, by_admin_flag=params.is_admin is not None)
        values = {
            "is_active": params.is_active,
            "is_admin": params.is_admin,
            "skip": params.skip,
            "limit": params.limit,
        }
        users = (await connection.execute(page, values)).all()
    if not params.with_total:
        return users, None
    total = await connection.scalar(select(func.count()).select_from(_users).where(*_filters(params)))
    return users, total or 0
