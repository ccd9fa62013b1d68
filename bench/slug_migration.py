"""The slug migration (0005-0006) on a big PostgreSQL table while a writer keeps working.

    .venv/bin/python bench/slug_migration.py [--users 1000000] [--server postgresql://postgres@127.0.0.1/postgres]

Creates a scratch database, migrates it to 0004 (the instant, nullable ADD COLUMN), fills it with
users, then runs `alembic upgrade head` -- the batched backfill and the NOT NULL + unique index
steps -- while writer tasks insert new users (with slugs, as the new code does) and rename
existing ones. It reports the migration's duration and the writers' latencies; the target is
that no write waits more than 1 s. Not a test: it takes minutes and prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import threading
import time
import uuid

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.config import PROJECT_ROOT
from app.migrations import alembic_config
from app.setting_values import to_async_url

# Names that collide (each one 20 times per million users), carry accents, or are punctuation.
FILL = """
INSERT INTO users (email, name, password_hash)
SELECT 'user' || n || '@example.com',
       (ARRAY['Alice Smith', 'José Núñez', 'Zoë O''Brien', '!!!', 'Member'])[1 + n % 5] || ' ' || (n % 50000),
       'x'
FROM generate_series(1, :users) AS n
"""


async def fill(engine: AsyncEngine, users: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(FILL), {"users": users})
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("VACUUM ANALYZE users"))


async def writer(engine: AsyncEngine, stop: threading.Event, latencies: list[float], max_id: int) -> None:
    while not stop.is_set():
        marker = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO users (email, name, slug, password_hash) VALUES (:email, :name, :slug, 'x')"),
                {"email": f"w{marker}@example.com", "name": f"Writer {marker}", "slug": f"writer-{marker}"},
            )
        latencies.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(
                text("UPDATE users SET name = :name WHERE id = :id"),
                {"name": f"Renamed {marker}", "id": random.randint(1, max_id)},  # noqa: S311 -- not security
            )
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.005)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()

    server = to_async_url(args.server)
    name = f"slugbench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name)
    url_text = url.render_as_string(hide_password=False)
    engine = create_async_engine(url, pool_size=args.writers + 2)
    try:
        config = alembic_config(url)
        await asyncio.to_thread(command.upgrade, config, "0004")
        started = time.perf_counter()
        await fill(engine, args.users)
        print(f"filled {args.users:,} users in {time.perf_counter() - started:.1f} s", flush=True)

        stop = threading.Event()
        latencies: list[float] = []
        writers = [asyncio.create_task(writer(engine, stop, latencies, args.users)) for _ in range(args.writers)]
        await asyncio.sleep(1)  # writers at full speed before the migration starts
        before = len(latencies)
        started = time.perf_counter()
        # In a process of its own, as a deploy runs it: in this one, its CPU work (a million slugs)
        # would hold the GIL and show up as the writers' latency.
        migrate = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "alembic",
            "upgrade",
            "head",
            cwd=PROJECT_ROOT,
            env={**os.environ, "DATABASE_URL": url_text},
        )
        if await migrate.wait() != 0:
            raise SystemExit("the migration failed")
        migration = time.perf_counter() - started
        during = latencies[before:]
        stop.set()
        await asyncio.gather(*writers)

        async with engine.connect() as connection:
            missing = await connection.scalar(text("SELECT count(*) FROM users WHERE slug IS NULL"))
            total = await connection.scalar(text("SELECT count(*) FROM users"))
        quantiles = statistics.quantiles(during, n=100)
        print(f"migration 0005-0006: {migration:.1f} s for {total:,} users ({missing} without a slug)")
        print(
            f"writes during it: {len(during):,}; latency p50 {quantiles[49] * 1000:.1f} ms, "
            f"p99 {quantiles[98] * 1000:.1f} ms, worst {max(during) * 1000:.0f} ms (target: under 1000 ms)"
        )
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
