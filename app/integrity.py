"""Recognise which unique index or foreign key an IntegrityError violated, on each dialect.

Repositories insert and let the database decide (no check-then-insert race), then turn the
violation into a 409 (or a missing parent into a 404). PostgreSQL and MariaDB name the
constraint; SQLite names a unique index's columns, and no foreign key at all.
"""

from __future__ import annotations

import re

from sqlalchemy import ForeignKeyConstraint, Index
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


_FOREIGN_KEY_NAMED = (
    re.compile(r'violates foreign key constraint "(?P<name>[^"]+)"'),  # PostgreSQL
    re.compile(r"a foreign key constraint fails \(.*?CONSTRAINT `(?P<name>[^`]+)`"),  # MariaDB / MySQL
)


def violates_foreign_key(error: IntegrityError, constraint: ForeignKeyConstraint) -> bool:
    """Whether `error` is a reference to a missing row through `constraint`.

    SQLite does not say which foreign key failed: any foreign-key failure counts there.
    """
    message = str(error.orig)
    for pattern in _FOREIGN_KEY_NAMED:
        match = pattern.search(message)
        if match:
            return match["name"] == constraint.name
    return "FOREIGN KEY constraint failed" in message
