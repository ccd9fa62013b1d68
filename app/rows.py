"""Result rows as plain dicts: the shape the read side hands to the response models.

Reading a SQLAlchemy `Row` by attribute or through `row._mapping` runs Python per column;
`zip` over the row reads the values in C, and pydantic's core validates a dict in one call
(README, Architecture: "rows validated in one call").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from sqlalchemy import Row

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any shape."""


def row_dicts(rows: Sequence[AnyRow]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name.

    The names become plain `str`: SQLAlchemy's are a `str` subclass, which pydantic's JSON
    encoder handles on a slow path, so a dict that reached a serialiser as it is would be slow.
    """
    if not rows:
        return []
    names = tuple(str(name) for name in rows[0]._fields)
    return [dict(zip(names, row, strict=True)) for row in rows]


def row_dict(row: AnyRow | None) -> dict[str, Any] | None:
    """One row as `row_dicts` gives it; None for no row."""
    return None if row is None else row_dicts((row,))[0]


def with_author(rows: Sequence[AnyRow]) -> list[dict[str, Any]]:
    """Rows that carry their author's name as `author_name`, as dicts with the `author` nested:
    the shape of a post or a comment."""
    items = row_dicts(rows)
    for item in items:
        item["author"] = {"id": item["author_id"], "name": item.pop("author_name")}
    return items
