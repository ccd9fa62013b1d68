"""`blogapi shell`: a Python shell with a sync ORM session and the models."""

from __future__ import annotations

import code
import importlib
import importlib.util
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from app import sync_database
from app.cli.common import fail, out
from app.cli.users import migrated_engine
from app.errors import one_line
from app.models import Comment, Post, User

BANNER = """\
blogapi shell on {url}
  session   a sync ORM Session (app.sync_database.SessionLocal); nothing is committed unless you
            call session.commit() -- leaving the shell rolls back and closes it
  User, Post, Comment   the models;  select, func   from sqlalchemy
e.g. session.scalars(select(User).order_by(User.id.desc()).limit(5)).all()"""


def register(cli: typer.Typer) -> None:
    """Add the `shell` command to `cli`."""
    cli.command("shell", help="A Python shell (IPython when installed) with a database session and the models.")(shell)


def shell(
    command: Annotated[
        str | None,
        typer.Option(
            "-c",
            "--command",
            metavar="CODE",
            help="Run CODE with the same names and exit; an exception is one line on stderr and exit 1.",
        ),
    ] = None,
) -> None:
    with migrated_engine() as engine, sync_database.SessionLocal(bind=engine) as session:
        # Bound to the engine itself rather than SessionLocal's unit-of-work binding: on SQLite its
        # transactions begin deferred, so a shell idling inside one never holds the write lock.
        namespace: dict[str, Any] = {
            "session": session,
            "User": User,
            "Post": Post,
            "Comment": Comment,
            "select": select,
            "func": func,
        }
        if command is not None:
            _run(command, namespace)
            return
        banner = BANNER.format(url=engine.url.render_as_string(hide_password=True))
        _interact(banner, namespace)


def _run(command: str, namespace: dict[str, Any]) -> None:
    try:
        exec(compile(command, "<shell -c>", "exec"), namespace)  # noqa: S102 -- running the user's code is the point
    except Exception as exc:  # noqa: BLE001 -- whatever the code raised is the one line
        fail(one_line(exc))


def _interact(banner: str, namespace: dict[str, Any]) -> None:
    if importlib.util.find_spec("IPython") is None:
        code.interact(banner=banner, local=namespace, exitmsg="")
        return
    out.print(banner, markup=False)
    # Imported by name: IPython is optional, and not a dependency the type checker knows.
    importlib.import_module("IPython").start_ipython(argv=[], user_ns=namespace, display_banner=False)
