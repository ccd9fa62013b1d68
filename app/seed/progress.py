"""How far a table's load has got, on stderr."""

from __future__ import annotations

import sys


class Progress:
    """One line on stderr, rewritten in place: `posts  421,000/1,000,000`."""

    def __init__(self, label: str, total: int, *, quiet: bool) -> None:
        self.label, self.total, self.done, self.quiet = label, total, 0, quiet

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.quiet or (not sys.stderr.isatty() and self.done < self.total):
            return  # redirected: just the final line per table
        end = "\n" if self.done >= self.total else ""
        print(f"\r{self.label:<9}{self.done:>12,}/{self.total:,}", end=end, file=sys.stderr, flush=True)
