"""Keyset positions: where a page ended, and the SQL condition for the rows after it.

The position becomes a range condition an index answers, instead of rows to skip, so a deep
page costs what the first one does. Cursors (`app.pagination`) carry a position signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, or_


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the sort value and id of its last row."""

    value: Any
    id: int


def after(
    sort: SQLColumnExpression[Any], id_: SQLColumnExpression[int], value: Any, last_id: Any, *, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after (`value`, `last_id`) in ORDER BY sort, id (both in the same direction).

    The position is given as values or as bound parameters (for a statement built once).
    Written as `sort <= v AND (sort < v OR id < i)` rather than a row comparison: the leading
    bound lets every backend (MariaDB included) turn it into an index range.
    """
    if sort is id_:
        by_id: ColumnElement[bool] = id_ < last_id if descending else id_ > last_id
        return by_id
    if descending:
        return and_(sort <= value, or_(sort < value, id_ < last_id))
    return and_(sort >= value, or_(sort > value, id_ > last_id))
