"""The app as `python -m app serve` runs it: `app.main:app` plus tuning that belongs to a process.

Tuning the garbage collector is a decision about the whole process, not about the app: an
embedding host, `uvicorn app.main:app` or a test run keeps the interpreter's own settings.
uvicorn calls `served_app` in every worker (`factory=True`), so each worker is tuned alike.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import app.main

# A request allocates a few thousand objects and frees nearly all of them by reference counting;
# at the default threshold (700) the youngest generation was still collected a few times per
# request. Collected less often, each collection is as short (what is young is mostly dead):
# CPU per request -2..-7 % side by side (BENCHMARKS.md, "Where the time goes", second round).
YOUNG_GENERATION_THRESHOLD = 20_000


def tune_collector() -> None:
    """Freeze what startup built and collect the youngest generation less often."""
    # Everything built so far (modules, models, schemas, compiled statements) lives as long as the
    # process: moved out of the collector's sight, a full collection no longer walks it all, which
    # showed as p99 latency spikes under load.
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, older, oldest)


def served_app() -> FastAPI:
    """`app.main:app`, tuned: what uvicorn runs in each worker of `python -m app serve`."""
    return tuned(app.main.app)


def tuned(served: FastAPI) -> FastAPI:
    """`served`, whose startup ends by tuning the collector, once the app's objects exist."""
    startup = served.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with startup(application):
            tune_collector()
            yield

    served.router.lifespan_context = lifespan
    return served
