"""The run's text: documents made once from the run's seed, which rows take slices of.

Choosing every word of every body with rng.choice (a Python call per word, ~80 words a post)
was three quarters of an earlier generator's time. Here every piece of text is one slice of a
long document made up front: a title a run of words from a random word stream, a comment a run
of consecutive sentences, a post a run of consecutive paragraphs -- one random() and one slice
each. The documents grow with the run, to 256k sentences (~40 MB in all): in a run of 2M
comments a body then comes up about twice on average, and small runs start quickly.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from itertools import accumulate

# A string, split once at import: shorter to read than a list literal.
_WORDS = (
    "database query index cursor page async session pool engine migration schema column table row "
    "lock commit rollback latency throughput python postgres mariadb sqlite alembic fastapi model "
    "join filter order limit offset keyset batch copy vacuum analyze plan scan hash tree"
).split()


class Runs:
    """Items joined into one string, `separator` between them, to slice runs of consecutive ones out of."""

    def __init__(self, separator: str, items: list[str]) -> None:
        self.text = separator.join(items)
        self.count = len(items)
        self.gap = len(separator)
        # Where each item starts, and one past the end (where one more would start).
        self.starts = array("q", accumulate(map(self.gap.__add__, map(len, items)), initial=0))

    def run(self, random_: Callable[[], float], shortest: int, longest: int) -> str:
        """`shortest` to `longest` consecutive items from a random place."""
        count = shortest + int(random_() * (longest - shortest + 1))
        at = int(random_() * (self.count - count + 1))
        return self.text[self.starts[at] : self.starts[at + count] - self.gap]


class Text:
    """A word stream (and its capitalised twin), sentences made of it, paragraphs of those."""

    def __init__(self, rng: random.Random, *, rows: int) -> None:
        random_ = rng.random
        size = min(max(rows // 8, 1 << 15), 1 << 18)
        words = rng.choices(_WORDS, k=max(size, 1 << 16))
        self.words = Runs(" ", words)
        # The same stream with every word capitalised, at the same offsets: titles come from here,
        # and a sentence takes its first word from here. (str.capitalize() on a whole phrase
        # converts every character through the Unicode tables: ~0.8 us, more than a row's rest.)
        self.capitalized = capitalized = " ".join(word.capitalize() for word in words)
        lower, starts, places = self.words.text, self.words.starts, 18 * (len(words) - 19)
        sentences = []
        for _ in range(size):
            draw = int(random_() * places)  # 3-20 words, anywhere
            at, end = draw // 18, draw // 18 + 3 + draw % 18
            sentences.append(f"{capitalized[starts[at] : starts[at + 1]]}{lower[starts[at + 1] : starts[end] - 1]}.")
        self.sentences = Runs(" ", sentences)
        self.paragraphs = Runs("\n\n", [self.sentences.run(random_, 1, 3) for _ in range(size // 2)])
