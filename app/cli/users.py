"""`blogapi users ...`: accounts from the command line, through the sync engine.

Each command is one unit of work (`SessionLocal.begin()`), validated and normalised as the API
does (app/users/accounts.py), and prints one line once it has committed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import sync_database
from app.cli.common import fail, out, require_migrated, sqlite_file_missing
from app.config import get_settings
from app.errors import AppError
from app.models import User
from app.sync_database import to_sync_url
from app.users import accounts
from app.users.errors import EmailTaken, UserNotFound

users = typer.Typer(help="Create accounts and change their role, state and password.", no_args_is_help=True)

Email = Annotated[str, typer.Argument(help="The account's email address (any letter case).", show_default=False)]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin instead of prompting."),
]


def register(cli: typer.Typer) -> None:
    """Add the `users` commands to `cli`."""
    cli.add_typer(users, name="users")


@contextmanager
def migrated_engine() -> Iterator[Engine]:
    """The default sync engine, once the database is known to be at this code's head; disposed after."""
    url = to_sync_url(get_settings())
    if sqlite_file_missing(url):
        # Checked before connecting, which would leave an empty file behind.
        require_migrated(url, None)
    # Built on this first use (app.sync_database), not when the CLI is imported: `--help` and
    # the other commands never read the database settings for it.
    engine = sync_database.engine
    try:
        with engine.connect() as connection:
            require_migrated(url, MigrationContext.configure(connection).get_current_revision())
        yield engine
    finally:
        engine.dispose()


def _in_unit_of_work(email: str, work: Callable[[Session], str]) -> None:
    """Run `work` in one unit of work and print its line after the commit; failures are one line."""
    try:
        with migrated_engine(), sync_database.SessionLocal.begin() as session:
            line = work(session)
    except ValidationError as exc:
        fail(_invalid(exc))
    except EmailTaken:
        fail("a user with this email already exists")
    except UserNotFound:
        fail(f"no user with the email {email}")
    except AppError as exc:
        fail(exc.detail)
    out.print(line, markup=False)


def _invalid(exc: ValidationError) -> str:
    """`invalid password: String should have at least 8 characters`: the first error, its field named."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "input"
    # A password is a SecretStr, whose length errors speak of "items": say characters, as for strings.
    bounds = {"too_short": ("least", "min_length"), "too_long": ("most", "max_length")}
    if error["type"] in bounds and field == "password":
        word, key = bounds[error["type"]]
        return f"invalid {field}: String should have at {word} {error['ctx'][key]} characters"
    # Never the error's `input`: it would echo a rejected password.
    return f"invalid {field}: {error['msg']}"


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
        return password
    line = sys.stdin.readline()
    if not line:
        fail("no password on stdin (--password-stdin reads its first line)")
    return line.removesuffix("\n").removesuffix("\r")


def _who(user: User) -> str:
    return f"user {user.id} {user.email}"


@users.command("create")
def create(
    email: Email,
    name: Annotated[str, typer.Option("--name", help="The display name (1-100 characters); the slug is made from it.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an admin.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account, as `POST /users` does; the password is prompted for (twice) unless piped."""
    password = _password(password_stdin)

    def work(session: Session) -> str:
        user = accounts.create_account(session, email=email, name=name, password=password, admin=admin)
        return f"created {_who(user)}{' (admin)' if admin else ''}"

    _in_unit_of_work(email, work)


@users.command("promote")
def promote(email: Email) -> None:
    """Make the account an admin."""

    def work(session: Session) -> str:
        user = accounts.get_account(session, email)
        if user.is_admin:
            return f"{_who(user)} is already an admin"
        accounts.set_admin(session, email, value=True)
        return f"promoted {_who(user)} to admin"

    _in_unit_of_work(email, work)


@users.command("demote")
def demote(email: Email) -> None:
    """Take the account's admin role away."""

    def work(session: Session) -> str:
        user = accounts.get_account(session, email)
        if not user.is_admin:
            return f"{_who(user)} is not an admin"
        accounts.set_admin(session, email, value=False)
        return f"demoted {_who(user)}: no longer an admin"

    _in_unit_of_work(email, work)


@users.command("deactivate")
def deactivate(email: Email) -> None:
    """Deactivate the account: hidden to all but admins, no logins, its tokens refused at once."""

    def work(session: Session) -> str:
        user = accounts.get_account(session, email)
        if not user.is_active:
            return f"{_who(user)} is already deactivated"
        accounts.deactivate(session, email)
        return f"deactivated {_who(user)}"

    _in_unit_of_work(email, work)


@users.command("set-password")
def set_password(email: Email, password_stdin: PasswordStdin = False) -> None:
    """Replace the account's password (prompted for twice unless piped); its existing tokens stop working."""
    password = _password(password_stdin)

    def work(session: Session) -> str:
        user = accounts.set_password(session, email, password)
        return f"set a new password for {_who(user)}; its earlier tokens are revoked"

    _in_unit_of_work(email, work)
