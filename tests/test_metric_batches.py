"""Observations written in one go read exactly as if each had been observed as it came."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.samples import Sample

from app.metrics import BatchHistogram, Metrics

_BUCKETS = (0.001, 0.01, 0.1, 1.0)
# Exactly on a bound too: `observe()` counts an amount equal to a bound in that bound's bucket.
amounts = st.lists(st.one_of(st.sampled_from(_BUCKETS), st.floats(0, 20, allow_nan=False)), min_size=1, max_size=40)


def _samples(registry: CollectorRegistry) -> list[Sample]:
    return [sample for family in registry.collect() for sample in family.samples]


@given(amounts=amounts)
def test_a_batch_fills_the_buckets_one_observation_at_a_time_would(amounts: list[float]) -> None:
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h", "h", ("k",), buckets=_BUCKETS, registry=one_by_one)
    histogram = BatchHistogram("h", "h", ("k",), buckets=_BUCKETS, registry=batched)
    for amount in amounts:
        reference.labels("a").observe(amount)
    histogram.labels("a").observe_all(amounts)
    expected, got = _samples(one_by_one), _samples(batched)
    assert [(s.name, s.labels) for s in got] == [(s.name, s.labels) for s in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert abs(mine.value - theirs.value) <= 1e-9 * max(1.0, abs(theirs.value)), (mine, theirs)


def _count(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_what_is_pending_is_written_before_a_collection_and_at_once_outside_a_loop() -> None:
    metrics = Metrics()

    async def served() -> tuple[float | None, float | None]:
        metrics.observe_request("GET", "/users/{user_id}", 200, 0.002)
        metrics.observe_request("GET", "/users/{user_id}", 200, 0.003)
        before = _count(metrics, "http_requests_total", method="GET", route="/users/{user_id}", status="200")
        metrics.exposition(None)  # a scrape: writes what is pending first
        after = _count(metrics, "http_requests_total", method="GET", route="/users/{user_id}", status="200")
        return before, after

    assert asyncio.run(served()) == (None, 2.0)
    # An invented method counts as one label value, not one per spelling.
    metrics.observe_request("BREW", "unmatched", 405, 0.001)  # outside a loop: written at once
    assert _count(metrics, "http_requests_total", method="OTHER", route="unmatched", status="405") == 1.0
    assert _count(metrics, "http_request_duration_seconds_count", method="OTHER", route="unmatched") == 1.0
