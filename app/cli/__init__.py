"""The command line: `blogapi ...` (the console script) or `python -m app ...`.

Each module adds its commands to `cli`; `main` runs them and turns every expected failure -- bad
input, a bad setting, a database that is down or not migrated -- into one line on stderr, saying
what failed (`migration refused: ...`), and a non-zero exit: never a traceback.
"""

from __future__ import annotations

import sys

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.cli import db, openapi, seed, serve, shell, users
from app.cli.common import CommandFailed, err
from app.errors import one_line

cli = typer.Typer(
    name="blogapi",
    help="Serve, migrate and administer the Blog API. Settings come from the environment (README: Configuration).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for module in (serve, db, users, seed, openapi, shell):
    module.register(cli)


def main(argv: list[str] | None = None) -> None:
    command = typer.main.get_command(cli)
    try:
        # Not standalone: click's own handling prints usage errors over several lines and lets
        # other exceptions through with a traceback; here each one becomes a line.
        code = command.main(args=argv, prog_name="blogapi", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        _exit("interrupted", 130)
    except typer.TyperException as exc:  # bad usage: an unknown option, a missing argument, a bad value
        # Empty when the help was printed already (a group called without a command).
        message = exc.format_message()
        _exit(f"usage error: {message} (see --help)" if message else "", exc.exit_code)
    except CommandFailed as exc:
        _exit(str(exc), 1)
    except (SQLAlchemyError, OSError) as exc:
        # Unreachable, refused, timed out, a permission: the driver's first line says which.
        _exit(f"database error: {one_line(exc)}", 1)
    sys.exit(code if isinstance(code, int) else 0)


def _exit(message: str, code: int) -> None:
    if message:
        err.print(message, markup=False)
    sys.exit(code)
