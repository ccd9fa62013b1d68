"""`blogapi openapi`: the OpenAPI document, for client generators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import fail, out


def register(cli: typer.Typer) -> None:
    cli.command("openapi")(openapi)


def openapi(
    output: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Write it to this file instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the OpenAPI document; it opens no database connection."""
    from app.main import create_app  # noqa: PLC0415 -- the whole app loads for this command only

    document = json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        out.file.write(document)
        return
    try:
        output.write_text(document, encoding="utf-8")
    except OSError as exc:
        fail(f"could not write {output}: {exc.strerror}")
    out.print(f"wrote {output}", markup=False)
