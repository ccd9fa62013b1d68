"""The rows: users, posts and comments in the order a live site would have made them.

Users, posts and comments are numbered in the order they were created; every post comes after
its author, every comment after its post and its author. All of it follows from one random
seed, so the same arguments give the same rows (timestamps are placed relative to `now_us`).
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.seed.corpus import Text
from app.users.slugs import SlugAllocator, base_slug, fallback_slug

CHUNK = 5000  # rows generated, and handed to the database, at a time
Row = tuple[Any, ...]
# Timestamps travel as integer microseconds since 1970 (UTC) until a loader needs them.
SECOND = 1_000_000
_YEAR = 365 * 86_400 * SECOND

# Each row holds these columns in this order, except that created_at, the last item, stands for
# updated_at too (a seeded row was never edited).
USER_COLUMNS = tuple("id email name slug password_hash bio is_active is_admin created_at updated_at".split())
POST_COLUMNS = tuple("id title content views author_id created_at updated_at".split())
COMMENT_COLUMNS = tuple("id post_id author_id body created_at updated_at".split())

# Strings, split once at import: shorter to read than list literals.
_FIRST = (
    "Ada Alan Grace Linus Margaret Dennis Barbara Ken Frances Edsger Radia Guido Hedy Tim Katherine "
    "José Zoë Søren Björn Aoife Chidi Mei Priya"
).split()
_LAST = (
    "Lovelace Turing Hopper Torvalds Hamilton Ritchie Liskov Thompson Allen Dijkstra Perlman Lamarr "
    "Berners-Lee Johnson Núñez O'Brien Kierkegaard Okafor Wang Patel"
).split()
_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]


@dataclass(frozen=True, slots=True)
class Table:
    """One table's share of the run: its rows, chunk by chunk, as tuples of `columns`."""

    name: str
    columns: tuple[str, ...]
    rows: int
    chunks: Iterator[list[Row]]


class World:
    """What the generators share: the text, the clock, and who exists when.

    The generators run one after the other (users, posts, comments), each reading the times the
    previous one recorded.
    """

    def __init__(self, rng: random.Random, *, rows: int, now_us: int, existing_users: list[int]) -> None:
        self.random = rng.random
        self.text = Text(rng, rows=rows)
        self.now_us = now_us
        # Users already in the database count as older than anything seeded.
        self.user_ids = existing_users
        self.older_users = len(existing_users)
        self.user_times = array("q")  # of the seeded users, ascending
        self.post_ids = range(0)
        self.post_times = array("q")  # ascending

    def users(self, ids: range, taken: set[str], password_hash: str) -> Iterator[list[Row]]:
        random_, sentences = self.random, self.text.sentences
        slugs = SlugAllocator(taken)  # first free, as registration numbers them
        # Every name the lists make, with its slug and email local part, worked out once.
        people = [
            (f"{first} {last}", base_slug(f"{first} {last}"), f"{base_slug(first)}.{base_slug(last)}")
            for first in _FIRST
            for last in _LAST
        ]
        self.user_ids = [*self.user_ids, *ids]
        times = self.user_times
        # Signed up over the last three years, one after another (a random moment in each slot).
        start, step = self.now_us - 3 * _YEAR, 3 * _YEAR / max(len(ids), 1)
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for user_id in chunk:
                name, slug, local = people[int(random_() * len(people))]
                created = start + int((user_id - ids.start + random_()) * step)
                times.append(created)
                rows.append(
                    (
                        user_id,
                        f"{local}.{user_id}@{_DOMAINS[int(random_() * len(_DOMAINS))]}",
                        name,
                        slugs.take(slug or fallback_slug(user_id)),
                        password_hash,
                        sentences.run(random_, 1, 3) if random_() < 0.4 else None,  # bio
                        random_() > 0.02,  # is_active
                        False,  # is_admin
                        created,
                    )
                )
            yield rows

    def posts(self, ids: range) -> Iterator[list[Row]]:
        random_ = self.random
        titles, title_starts, words = self.text.capitalized, self.text.words.starts, self.text.words.count
        paragraphs = self.text.paragraphs
        paragraph_text, paragraph_starts, paragraph_count = paragraphs.text, paragraphs.starts, paragraphs.count
        authors = self.user_ids
        self.post_ids = ids
        times = self.post_times
        # Published over the last two years, one after another, each by a user signed up by then.
        step = 2 * _YEAR / max(len(ids), 1)
        origin = self.now_us - 2 * _YEAR - ids.start * step  # post_id + random() slots past it
        signups = self._signups()
        eligible, next_signup = next(signups)
        # The hot loop has Runs.run written out, and draws a length and a place at once: a length
        # of 10 kinds at 1,000 places is one of 10,000.
        title_draws = 10 * (words - 11)  # 3-12 words, anywhere
        body_draws = 6 * (paragraph_count - 5)  # 1-6 paragraphs, anywhere
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for post_id in chunk:
                created = int(origin + (post_id + random_()) * step)
                times.append(created)
                while next_signup <= created:
                    eligible, next_signup = next(signups)
                title = int(random_() * title_draws)
                title_at, title_end = title // 10, title // 10 + 3 + title % 10
                body = int(random_() * body_draws)
                body_at, body_end = body // 6, body // 6 + 1 + body % 6
                rows.append(
                    (
                        post_id,
                        titles[title_starts[title_at] : title_starts[title_end] - 1],
                        paragraph_text[paragraph_starts[body_at] : paragraph_starts[body_end] - 2],
                        # Most posts are read a little, a few a lot: Pareto, alpha 1.2, capped
                        # (its tail would, once in ~10^10 posts, overflow the integer column).
                        min(int(10.0 / (1.0 - random_()) ** (1 / 1.2)) - 10, 10_000_000),
                        authors[int(random_() * eligible)],
                        created,
                    )
                )
            yield rows

    def _signups(self) -> Iterator[tuple[int, float]]:
        """(how many users there are, when the next one signs up), from the start of time on."""
        users = self.older_users
        for signed_up in self.user_times:
            if users:  # before the first user, the first one stands in
                yield users, signed_up
            users += 1
        yield max(users, 1), float("inf")

    def comments(self, ids: range) -> Iterator[list[Row]]:
        if not ids:
            return
        random_ = self.random
        sentences = self.text.sentences
        sentence_text, sentence_starts, sentence_count = sentences.text, sentences.starts, sentences.count
        authors, post_ids, post_times = self.user_ids, self.post_ids, self.post_times
        # Written from the first post until now, one after another, each on a post already out
        # and by a user already signed up -- so older posts gather more comments.
        step = (self.now_us - post_times[0]) / len(ids)
        origin = post_times[0] - ids.start * step
        signups = self._signups()
        eligible, next_signup = next(signups)
        post_times = post_times + array("q", [1 << 62])  # a post that never comes, ends the while below
        published, next_post = 1, post_times[1]
        body_draws = 4 * (sentence_count - 3)  # 1-4 sentences, anywhere: a length and a place in one draw
        for chunk in _ranges(ids):
            rows: list[Row] = []
            for comment_id in chunk:
                created = int(origin + (comment_id + random_()) * step)
                while next_post <= created:
                    published += 1
                    next_post = post_times[published]
                while next_signup <= created:
                    eligible, next_signup = next(signups)
                body = int(random_() * body_draws)
                body_at, body_end = body >> 2, (body >> 2) + 1 + (body & 3)
                rows.append(
                    (
                        comment_id,
                        post_ids[int(random_() * published)],
                        authors[int(random_() * eligible)],
                        sentence_text[sentence_starts[body_at] : sentence_starts[body_end] - 1],
                        created,
                    )
                )
            yield rows


def _ranges(ids: range) -> Iterator[range]:
    for start in range(ids.start, ids.stop, CHUNK):
        yield range(start, min(start + CHUNK, ids.stop))
