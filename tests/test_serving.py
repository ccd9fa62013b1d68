"""`python -m app serve` tunes the collector of each worker once its app has started."""

from __future__ import annotations

import gc

from app.main import create_app
from app.serving import YOUNG_GENERATION_THRESHOLD, tuned
from tests.conftest import make_settings, serving
from tests.databases import ScratchDatabase


async def test_the_served_app_tunes_the_collector_after_startup(backend: ScratchDatabase) -> None:
    before = gc.get_threshold()
    app = tuned(create_app(make_settings(backend)))
    try:
        assert gc.get_threshold() == before  # building the app is no reason to touch the process
        async with serving(app) as client:
            assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD
            assert gc.get_freeze_count() > 0
            assert (await client.get("/health/ready")).status_code == 200
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
