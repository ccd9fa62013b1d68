"""How far a table's load has got, reported to whoever asked (the CLI draws a bar per table)."""

from __future__ import annotations

from collections.abc import Callable

# (table, rows just loaded, the rows this run adds to it); rows may be 0 for an empty table.
Report = Callable[[str, int, int], None]


class Progress:
    """The rows of one table loaded so far."""

    def __init__(self, label: str, total: int, report: Report | None) -> None:
        self.label, self.total, self.done, self.report = label, total, 0, report

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.report is not None:
            self.report(self.label, rows, self.total)
