"""User rules: who may see, list, change and delete which account. Never commits."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.database import Connection
from app.emails import normalize_email
from app.errors import NotAuthenticated, NotPermitted
from app.models import User
from app.pagination import Slice
from app.posts import service as posts
from app.posts.schemas import PostQuery, PostRead
from app.security import hash_password, verify_password
from app.users import repository
from app.users.errors import UserNotFound
from app.users.repository import UserFilter
from app.users.schemas import RECENT_POSTS, UserCreate, UserListParams, UserUpdate
from app.viewer import Viewer, may_manage

logger = logging.getLogger(__name__)


async def register(session: AsyncSession, data: UserCreate) -> User:
    # Hash before touching the database, so no pooled connection waits on argon2.
    password_hash = await hash_password(data.password.get_secret_value())
    user = User(email=data.email, name=data.name, password_hash=password_hash, bio=data.bio)
    return await repository.add(session, user)


async def get_visible(connection: Connection, user_id: int, *, viewer: Viewer | None) -> dict[str, Any]:
    """A deactivated account is visible to admins only; to everyone else it does not exist."""
    return _visible(await repository.read_profile(connection, user_id), viewer)


async def get_visible_by_slug(connection: Connection, slug: str, *, viewer: Viewer | None) -> dict[str, Any]:
    return _visible(await repository.read_profile_by_slug(connection, slug), viewer)


def _visible(profile: dict[str, Any] | None, viewer: Viewer | None) -> dict[str, Any]:
    if profile is None or not (profile["is_active"] or (viewer is not None and viewer.is_admin)):
        raise UserNotFound()
    return profile


async def list_posts_of(
    connection: Connection, user_id: int, params: PostQuery, *, viewer: Viewer | None, secret: str
) -> Slice[PostRead]:
    """A visible user's posts, paged like every listing of posts."""
    await get_visible(connection, user_id, viewer=viewer)
    return await posts.list_posts(connection, params, author_id=user_id, secret=secret)


async def list_users(
    connection: Connection, params: UserListParams, *, viewer: Viewer | None
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of profiles; with `include=posts`, each with its RECENT_POSTS newest posts."""
    if not params.is_active or params.email_domain:
        _require_admin(viewer, "only admins may list deactivated users or filter by email domain")
    filters = UserFilter(
        is_active=params.is_active,
        is_admin=params.is_admin,
        name_contains=params.q,
        email_domains=tuple(params.email_domain),
    )
    return await repository.list_page(
        connection,
        filters,
        order_by=params.order_by,
        descending=params.order == "desc",
        skip=params.skip,
        limit=params.limit,
        with_total=params.with_total,
        recent_posts=RECENT_POSTS if "posts" in params.include else 0,
    )


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate, *, viewer: Viewer | None) -> User:
    if not may_manage(viewer, user_id):
        raise NotPermitted("you may only change your own account")
    changes = data.model_dump(exclude_unset=True, exclude={"password"})
    if {"is_active", "is_admin"} & changes.keys():
        _require_admin(viewer, "only admins may change is_active or is_admin")
    # Hashed before the session touches the database: argon2 must not hold a pooled connection.
    new_hash = await hash_password(data.password.get_secret_value()) if data.password is not None else None
    user = await repository.get(session, user_id)
    if user is None:
        raise UserNotFound()
    if new_hash is not None:
        user.password_hash = new_hash
    for field, value in changes.items():
        setattr(user, field, value)
    await repository.flush(session)
    return user


async def delete_user(session: AsyncSession, user_id: int, *, viewer: Viewer | None) -> None:
    if not may_manage(viewer, user_id):
        raise NotPermitted("you may only delete your own account")
    if not await repository.delete_by_id(session, user_id):
        raise UserNotFound()


async def ensure_admin(session: AsyncSession, *, email: str, password: str, name: str) -> User:
    """Make sure an active admin account with this email and password exists (ADMIN_* settings).

    An existing account is promoted and keeps its name; its password is replaced by
    ADMIN_PASSWORD unless it already is that password -- registration does not prove who owns
    an address, so whoever registered ADMIN_EMAIL first must not end up an admin under a
    password the operator does not know. A concurrent creation of the same account (several
    workers starting at once) is EmailTaken: the caller tries again in a new unit of work.
    """
    email = normalize_email(email)
    user = await repository.get_by_email(session, email)
    if user is None:
        admin = User(email=email, name=name, password_hash=await hash_password(password), is_admin=True)
        return await repository.add(session, admin)
    if not await verify_password(user.password_hash, password):
        logger.warning("ADMIN_EMAIL %s exists with another password; setting ADMIN_PASSWORD", email)
        user.password_hash = await hash_password(password)
    user.is_admin = True
    user.is_active = True
    await repository.flush(session)
    return user


def _require_admin(viewer: Viewer | None, message: str) -> None:
    if viewer is None:
        raise NotAuthenticated()
    if not viewer.is_admin:
        raise NotPermitted(message)
