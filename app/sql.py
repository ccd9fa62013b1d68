"""Text filters as bound values, so a listing's statement is built once whatever is searched.

`column.icontains(bindparam(...), escape=ESCAPE)` renders exactly what `icontains(value,
autoescape=True)` does, but the value is a parameter of a cached statement instead of part of a
statement built per request; the value is escaped here instead, the same way.
"""

from __future__ import annotations

ESCAPE = "/"


def escape_like(value: str) -> str:
    """`value` to be matched literally by LIKE ... ESCAPE '/': `%` and `_` are not wildcards."""
    return value.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
