"""User rules: who may see, list, change and delete which account. Never commits."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.auth.viewer import Viewer
from app.database import AnyRow
from app.errors import NotAuthenticated, NotPermitted
from app.models import User
from app.security import hash_password, verify_password
from app.users import repository
from app.users.errors import EmailTaken, UserNotFound
from app.users.schemas import RECENT_POSTS, UserCreate, UserListParams, UserUpdate, normalize_email

logger = logging.getLogger(__name__)


def can_manage(viewer: Viewer | None, user_id: int) -> bool:
    """The account's owner and admins may see its email, change it and delete it."""
    return viewer is not None and (viewer.is_admin or viewer.id == user_id)


async def register(session: AsyncSession, data: UserCreate) -> User:
    # Hash before touching the database, so no pooled connection waits on argon2.
    password_hash = await hash_password(data.password.get_secret_value())
    user = User(email=data.email, name=data.name, password_hash=password_hash, bio=data.bio)
    return await repository.add(session, user)


async def get_visible(connection: AsyncConnection, user_id: int, *, viewer: Viewer | None) -> AnyRow:
    """A deactivated account is visible to admins only; to everyone else it does not exist."""
    return _visible(await repository.read_profile(connection, user_id), viewer)


async def get_visible_by_slug(connection: AsyncConnection, slug: str, *, viewer: Viewer | None) -> AnyRow:
    return _visible(await repository.read_profile_by_slug(connection, slug), viewer)


def _visible(profile: AnyRow | None, viewer: Viewer | None) -> AnyRow:
    if profile is None or not (profile.is_active or (viewer is not None and viewer.is_admin)):
        raise UserNotFound()
    return profile


async def list_users(
    connection: AsyncConnection, params: UserListParams, *, viewer: Viewer | None
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of profiles; with `include=posts`, each with its RECENT_POSTS newest posts."""
    if not params.is_active or params.email_domain:
        _require_admin(viewer, "only admins may list deactivated users or filter by email domain")
    recent_posts = RECENT_POSTS if "posts" in params.include else 0
    return await repository.list_page(connection, params, recent_posts=recent_posts)


async def update_user(session: AsyncSession, user_id: int, data: UserUpdate, *, viewer: Viewer | None) -> User:
    if not can_manage(viewer, user_id):
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
    if not can_manage(viewer, user_id):
        raise NotPermitted("you may only delete your own account")
    if not await repository.delete_by_id(session, user_id):
        raise UserNotFound()


async def ensure_admin(
    session_factory: async_sessionmaker[AsyncSession], *, email: str, password: str, name: str
) -> User:
    """Make sure an active admin account with this email and password exists (ADMIN_* settings).

    Idempotent, and safe when several workers start at once: whoever loses the insert race
    promotes the row the winner wrote. An existing account is promoted and keeps its name; its
    password is replaced by ADMIN_PASSWORD unless it already is that password -- registration
    does not prove who owns an address, so whoever registered ADMIN_EMAIL first must not end up
    an admin under a password the operator does not know.
    """
    email = normalize_email(email)
    for _ in range(2):
        async with session_factory() as session:
            user = await repository.get_by_email(session, email)
            if user is None:
                user = User(email=email, name=name, password_hash=await hash_password(password), is_admin=True)
                try:
                    await repository.add(session, user)
                except EmailTaken:
                    continue
            else:
                if not await verify_password(user.password_hash, password):
                    logger.warning("ADMIN_EMAIL %s exists with another password; setting ADMIN_PASSWORD", email)
                    user.password_hash = await hash_password(password)
                user.is_admin = True
                user.is_active = True
            try:
                await session.commit()
            except IntegrityError:
                continue
            return user
    raise RuntimeError(f"could not create or promote the admin account {email}")


def _require_admin(viewer: Viewer | None, message: str) -> None:
    if viewer is None:
        raise NotAuthenticated()
    if not viewer.is_admin:
        raise NotPermitted(message)
