"""Profile handles: `José Núñez` -> `jose-nunez`.

Lower-case ASCII letters and digits; each run of anything else is one `-`; accents are dropped
(letters NFKD cannot split get a spelling of their own); no `-` at either end. A name that leaves
nothing gets `user-<id>`. Taken slugs get `-2`, `-3`, ... in the order users were created.

A slug is made once, at registration, and kept when the name changes, so links stay valid.
Migration 0005 holds a frozen copy of these rules for the users that existed before slugs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_BASE_MAX_LENGTH = 100  # room for a "-<n>" suffix
_SPELLINGS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "\u0131": "i"})
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def base_slug(name: str) -> str:
    """The slug a name asks for, before duplicates are told apart; may be empty."""
    folded = unicodedata.normalize("NFKD", name.lower().translate(_SPELLINGS))
    ascii_only = folded.encode("ascii", "ignore").decode()
    return _SEPARATORS.sub("-", ascii_only).strip("-")[:_BASE_MAX_LENGTH].strip("-")


def fallback_slug(user_id: int) -> str:
    return f"user-{user_id}"


def next_free(base: str, taken: Iterable[str]) -> str:
    """`base` if free, else `base-<n>` with n one more than the highest suffix in use."""
    taken = set(taken)
    if base not in taken:
        return base
    prefix = f"{base}-"
    suffixes = [int(slug[len(prefix) :]) for slug in taken if slug.startswith(prefix) and slug[len(prefix) :].isdigit()]
    return f"{base}-{max([1, *suffixes]) + 1}"
