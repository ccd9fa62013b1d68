"""Recognise which unique index an IntegrityError violated, on each dialect.

Repositories insert and let the database decide (no check-then-insert race), then turn the
violation into a 409. PostgreSQL and MariaDB name the index; SQLite names the columns instead.
"""

from __future__ import annotations

import re

from sqlalchemy import Index
from sqlalchemy.exc import IntegrityError

_NAMED = (
    re.compile(r'unique constraint "(?P<name>[^"]+)"'),  # PostgreSQL
    re.compile(r"Duplicate entry .* for key '(?:[^'.]+\.)?(?P<name>[^']+)'"),  # MariaDB / MySQL
)
_SQLITE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w.]+(?:, [\w.]+)*)")


def violates_unique(error: IntegrityError, index: Index) -> bool:
    """Whether `error` is a duplicate on the unique `index`."""
    message = str(error.orig)
    for pattern in _NAMED:
        match = pattern.search(message)
        if match:
            return match["name"] == index.name
    match = _SQLITE.search(message)
    if match and index.table is not None:
        wanted = {f"{index.table.name}.{column.name}" for column in index.columns}
        return set(match["columns"].split(", ")) == wanted
    return False
