"""`python -m app seed`: deterministic, realistic-looking data at scale, for benchmarks and demos.

Every seeded user signs in with SEED_PASSWORD. Rows are generated from one random seed, so the
same arguments give the same data (timestamps are placed relative to the moment of the run).
They are generated on a worker thread, ahead of the database, which takes the rows meanwhile.
PostgreSQL gets binary COPY, all in one transaction; MariaDB and SQLite get multi-row INSERTs,
committed batch by batch.

    run.py         seed(): what the database holds, then the backend's loader
    world.py       the users, posts and comments, in order of time
    corpus.py      the text they take slices of
    pipeline.py    the rows made on a worker thread, ahead of the database
    postgresql.py  binary COPY; indexes and foreign keys set aside and rebuilt
    inserts.py     MariaDB and SQLite

Importing this package costs one constant: `seed` and `SeedReport` load the rest when first
asked for, so the CLI can show the password in its help without loading the seed code, and the
API, which never seeds, never does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.seed.run import SeedReport, seed

__all__ = ["SEED_PASSWORD", "SeedReport", "seed"]

SEED_PASSWORD = "seeded password"  # noqa: S105 -- documented: every seeded user signs in with it


def __getattr__(name: str) -> Any:
    if name in ("SeedReport", "seed"):
        from app.seed import run  # noqa: PLC0415 -- the point: loaded on first use, not with the package

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
