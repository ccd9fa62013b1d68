"""`blogapi shell`: a Python shell with a sync ORM session and the models."""

from __future__ import annotations

import typer


def register(cli: typer.Typer) -> None:
    """Add the `shell` command to `cli`."""
