"""Accounts from the command line, on a sync `Session`: the CLI's service layer. Never commits.

The rules are the API's: input goes through the API's own schemas (`UserCreate`, `UserUpdate`),
emails are normalised as registration and login do, slugs are allocated the same way, and a
duplicate email is `EmailTaken` (the API's 409). The caller owns the unit of work
(`with SessionLocal.begin() as session:`).

Raises pydantic's `ValidationError` for invalid input, `UserNotFound` for an unknown email.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Index, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from app.emails import normalize_email
from app.errors import Conflict
from app.integrity import violates_unique
from app.models import Base, User
from app.security import hash_password_blocking
from app.users.errors import EmailTaken, UserNotFound
from app.users.schemas import UserCreate, UserUpdate
from app.users.slugs import base_slug, candidates, fallback_slug

# The same bounds as app/users/repository.py: registrations racing for one slug, and how many
# candidate slugs one query probes.
_SLUG_ATTEMPTS = 32
_SLUG_PROBE = 25


def _index(name: str) -> Index:
    return next(index for index in Base.metadata.tables["users"].indexes if index.name == name)


_EMAIL_INDEX = _index("ix_users_email")
_SLUG_INDEX = _index("ix_users_slug")


def create_account(session: Session, *, email: str, name: str, password: str, admin: bool) -> User:
    """Register as `POST /users` does; `admin` makes the account an admin from the start."""
    data = UserCreate.model_validate({"email": email, "name": name, "password": password})
    # Hashed before the first statement: on SQLite the unit of work holds the write lock.
    password_hash = hash_password_blocking(data.password.get_secret_value())
    user = User(email=data.email, name=data.name, password_hash=password_hash, is_admin=admin)
    base = base_slug(user.name)
    for _ in range(_SLUG_ATTEMPTS):
        try:
            # A SAVEPOINT: a slug taken meanwhile by a concurrent registration is retried
            # without undoing whatever else the caller's unit of work holds.
            with session.begin_nested():
                _insert_with_slug(session, user, base)
        except IntegrityError as exc:
            if violates_unique(exc, _EMAIL_INDEX):
                raise EmailTaken() from None
            if not violates_unique(exc, _SLUG_INDEX):
                raise
            continue
        return user
    raise Conflict("Too many registrations with this name at once; retry")


def get_account(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise UserNotFound()
    return user


def set_admin(session: Session, email: str, value: bool) -> User:
    user = get_account(session, email)
    user.is_admin = value
    _flush(session)
    return user


def deactivate(session: Session, email: str) -> User:
    """As `PATCH is_active=false`: hidden from everyone but admins; its tokens stop working at once."""
    user = get_account(session, email)
    user.is_active = False
    _flush(session)
    return user


def set_password(session: Session, email: str, password: str) -> User:
    """Replace the password; every token issued before is refused from now on.

    Tokens carry a fingerprint of the password hash (app.security), which the API checks on
    every request: a new hash -- always new, argon2 salts each one -- revokes them all.
    """
    data = UserUpdate.model_validate({"password": password})
    assert data.password is not None  # given above; narrows the type
    password_hash = hash_password_blocking(data.password.get_secret_value())
    user = get_account(session, email)
    user.password_hash = password_hash
    _flush(session)
    return user


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError:  # deleted between our SELECT and UPDATE
        raise UserNotFound() from None


def _free_slug(session: Session, base: str) -> str:
    """The first of `base`, `base-2`, ... not in use (as the async repository probes)."""
    start = 1
    while True:
        batch = candidates(base, start, _SLUG_PROBE)
        taken = set(session.scalars(select(User.slug).where(User.slug.in_(batch))).all())
        for slug in batch:
            if slug not in taken:
                return slug
        start += _SLUG_PROBE


def _insert_with_slug(session: Session, user: User, base: str) -> None:
    # A nameless user's slug needs the id: a placeholder until the row has one.
    user.slug = _free_slug(session, base) if base else f"pending-{uuid.uuid4().hex}"
    session.add(user)
    session.flush()
    if not base:
        slug = _free_slug(session, fallback_slug(user.id))
        # Replacing the placeholder is not an edit: updated_at stays equal to created_at.
        fill_in = update(User).where(User.id == user.id).values(slug=slug, updated_at=User.updated_at)
        session.execute(fill_in.execution_options(synchronize_session=False))
        set_committed_value(user, "slug", slug)
