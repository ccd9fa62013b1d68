"""Every query on `users`. Flushes, never commits: the request's unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Index, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.integrity import violates_unique
from app.models import User
from app.users.errors import EmailTaken, UserNotFound
from app.users.schemas import UserListParams

_EMAIL_INDEX: Index = next(ix for ix in User.__table__.indexes if ix.name == "ix_users_email")  # type: ignore[attr-defined]

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


async def add(session: AsyncSession, user: User) -> User:
    session.add(user)
    await flush(session)
    return user


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


async def list_page(session: AsyncSession, params: UserListParams) -> tuple[Sequence[User], int]:
    filters = _filters(params)
    column = _ORDER_COLUMNS[params.order_by]
    ordering = (column.desc(), User.id.desc()) if params.order == "desc" else (column.asc(), User.id.asc())
    page = select(User).where(*filters).order_by(*ordering).offset(params.skip).limit(params.limit)
    users = (await session.scalars(page)).all()
    total = await session.scalar(select(func.count()).select_from(User).where(*filters))
    return users, total or 0
