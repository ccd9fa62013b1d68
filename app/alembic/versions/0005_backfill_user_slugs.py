"""backfill user slugs from names

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Slug rules (a frozen copy of app.users.slugs as of this revision): lower-case ASCII letters and
digits, each run of anything else one "-", accents dropped, no "-" at either end; empty ->
"user-<id>"; duplicates get "-2", "-3", ... in id order.
"""

import re
import unicodedata
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH_SIZE = 5000
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
    # Decompose first, then lower-case: NFKD turns some letters (mathematical, black-letter)
    # into capitals, which would otherwise be dropped.
    folded = unicodedata.normalize("NFKD", name).lower().translate(_SPELLINGS)
    ascii_only = folded.encode("ascii", "ignore").decode()
    return _SEPARATORS.sub("-", ascii_only).strip("-")[:100].strip("-")


class Allocator:
    """Hands out unique slugs; linear in the number of users (a dict, not a rescan per duplicate)."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        self.highest: dict[str, int] = {}

    def allocate(self, user_id: int, name: str) -> str:
        base = base_slug(name) or f"user-{user_id}"
        slug = base
        if slug in self.taken:
            n = self.highest.get(base, 1)
            while slug in self.taken:
                n += 1
                slug = f"{base}-{n}"
            self.highest[base] = n
        self.taken.add(slug)
        return slug


def _batches(rows: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    for start in range(0, len(rows), BATCH_SIZE):
        yield rows[start : start + BATCH_SIZE]


def upgrade() -> None:
    if context.is_offline_mode():
        # Slugs are computed in Python from the rows, which a printed script cannot read. On an
        # empty database (what --sql is for) there is nothing to do; on PostgreSQL the script
        # refuses to go on past a database that has users, instead of recording 0005 as done.
        op.execute("-- 0005: user slugs are backfilled online only; on a database with users, run it online")
        if op.get_context().dialect.name == "postgresql":
            op.execute(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM users WHERE slug IS NULL) THEN "
                "RAISE EXCEPTION 'users need slugs: run this revision (0005) online with alembic'; "
                "END IF; END $$"
            )
        return
    bind = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("slug", sa.String))
    # Users registered by new code while this runs already have one: theirs are taken.
    taken = {slug for (slug,) in bind.execute(sa.select(users.c.slug).where(users.c.slug.is_not(None)))}
    pending = bind.execute(sa.select(users.c.id, users.c.name).where(users.c.slug.is_(None)).order_by(users.c.id)).all()
    allocator = Allocator(taken)
    slugs = [(user_id, allocator.allocate(user_id, name)) for user_id, name in pending]
    if bind.dialect.name == "postgresql":
        # One short transaction per batch, outside the migration's: a single UPDATE of every row
        # would hold every row lock (blocking writers) until the whole migration commits.
        with op.get_context().autocommit_block():
            for batch in _batches(slugs):
                ids, new_slugs = zip(*batch, strict=True)
                # Two array parameters, not thousands of bound values; the id range (batches are
                # in id order) lets the primary key find the rows.
                bind.execute(
                    sa.text(
                        "UPDATE users SET slug = v.slug "
                        "FROM unnest(CAST(:ids AS integer[]), CAST(:slugs AS text[])) AS v(id, slug) "
                        "WHERE users.id = v.id AND users.id BETWEEN :low AND :high AND users.slug IS NULL"
                    ),
                    {"ids": list(ids), "slugs": list(new_slugs), "low": ids[0], "high": ids[-1]},
                )
        return
    if bind.dialect.name in ("mysql", "mariadb"):
        # One statement per batch, each committing on its own (MariaDB's DDL is not transactional
        # anyway): one transaction over every batch would hold a lock on every user until the end.
        with op.get_context().autocommit_block():
            for batch in _batches(slugs):
                rows = " UNION ALL ".join(f"SELECT :id{i} AS id, :slug{i} AS slug" for i in range(len(batch)))
                params: dict[str, int | str] = {f"id{i}": user_id for i, (user_id, _) in enumerate(batch)}
                params |= {f"slug{i}": slug for i, (_, slug) in enumerate(batch)}
                bind.execute(
                    sa.text(
                        f"UPDATE users JOIN ({rows}) AS v ON users.id = v.id "  # noqa: S608 -- placeholders only
                        "SET users.slug = v.slug WHERE users.slug IS NULL"
                    ),
                    params,
                )
        return
    # SQLite: one writer at a time anyway; batches within the migration's transaction.
    update = users.update().where(users.c.id == sa.bindparam("user_id")).values(slug=sa.bindparam("new_slug"))
    for batch in _batches(slugs):
        bind.execute(update, [{"user_id": user_id, "new_slug": slug} for user_id, slug in batch])


def downgrade() -> None:
    # Back to 0004's state: the column exists and is empty.
    op.execute("UPDATE users SET slug = NULL")
