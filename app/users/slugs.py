"""Profile handles: `José Núñez` -> `jose-nunez`.

Lower-case ASCII letters and digits; each run of anything else is one `-`; accents are dropped
(letters NFKD cannot split get a spelling of their own); no `-` at either end. A name that leaves
nothing gets `user-<id>`. A taken slug gets the first free of `-2`, `-3`, ... so duplicates are
numbered in the order users were created.

A slug is made once, at registration, and kept when the name changes, so links stay valid.
Migration 0005 holds a frozen copy of these rules for the users that existed before slugs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_BASE_MAX_LENGTH = 100  # room for a "-<n>" suffix
_SPELLINGS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "đ": "d",
        "ł": "l",
        "þ": "th",
        "\u0131": "i",
        "ð": "d",
        "ħ": "h",
        "ŋ": "n",
    }
)
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def base_slug(name: str) -> str:
    """The slug a name asks for, before duplicates are told apart; may be empty."""
    # Decompose first, then lower-case: NFKD turns some letters (mathematical, black-letter)
    # into capitals, which would otherwise be dropped.
    folded = unicodedata.normalize("NFKD", name).lower().translate(_SPELLINGS)
    ascii_only = folded.encode("ascii", "ignore").decode()
    return _SEPARATORS.sub("-", ascii_only).strip("-")[:_BASE_MAX_LENGTH].strip("-")


def fallback_slug(user_id: int) -> str:
    return f"user-{user_id}"


def candidates(base: str, start: int, count: int) -> list[str]:
    """`base`, `base-2`, `base-3`, ...: the slugs to try, `count` of them from number `start`."""
    return [base if n == 1 else f"{base}-{n}" for n in range(start, start + count)]


class SlugAllocator:
    """Hands out first-free slugs against a growing set of taken ones, remembering how far each
    base got, so numbering many duplicates stays linear (seeding, backfills)."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self.taken = set(taken)
        self._reached: dict[str, int] = {}

    def take(self, base: str) -> str:
        n = self._reached.get(base, 1)
        while (slug := base if n == 1 else f"{base}-{n}") in self.taken:
            n += 1
        self._reached[base] = n
        self.taken.add(slug)
        return slug


def first_free(base: str, taken: Iterable[str]) -> str:
    """The first of `base`, `base-2`, `base-3`, ... not in `taken`."""
    return SlugAllocator(taken).take(base)
