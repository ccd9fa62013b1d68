"""`blogapi users ...`: accounts from the command line, through the sync engine."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    """Add the `users` commands to `cli`."""
