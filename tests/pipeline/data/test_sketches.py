"""The mergeable sketches against numpy on the same data: exact while small, within their stated error beyond,
and the same whichever way the parts are merged."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from pipeline.data.sketches import (
    EXACT_DISTINCT,
    MAX_VALUE_BYTES,
    RUN_ITEMS,
    TOP_CAPACITY,
    Distinct,
    Quantiles,
    TopValues,
    hashes_of,
)
from tests.conftest import ROOT

TEMPLATE = ROOT / "template"

FRACTIONS = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def merged(parts: list[Quantiles]) -> Quantiles:
    sketch = Quantiles()
    for part in parts:
        sketch.merge(part)
    return sketch


def rank_bounds(data: np.ndarray, value: float) -> tuple[int, int]:
    """The ranks (counts of values below, and at or below) `value` has in `data`."""
    ordered = np.sort(data)
    return int(np.searchsorted(ordered, value, "left")), int(np.searchsorted(ordered, value, "right"))


def test_few_distinct_values_are_kept_exactly_whatever_the_count():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(300, 784)).astype(np.float32) / 255  # 256 distinct values
    sketch = merged([Quantiles.of(part) for part in np.array_split(pixels, 7)])
    assert sketch.rank_error() == 0
    assert sketch.quantiles(FRACTIONS) == pytest.approx(np.quantile(pixels, FRACTIONS, method="inverted_cdf"))
    edges = np.linspace(0, 1, 21)
    assert sketch.histogram(edges).tolist() == np.histogram(pixels, edges)[0].tolist()


def test_many_distinct_values_stay_within_the_stated_rank_error():
    rng = np.random.default_rng(2)
    data = rng.lognormal(size=400_000)
    sketch = merged([Quantiles.of(part) for part in np.array_split(data, 300)])
    error = sketch.rank_error()
    assert 0 < error < 0.01 * len(data)
    for fraction, value in zip(FRACTIONS[1:-1], sketch.quantiles(FRACTIONS[1:-1]), strict=True):
        below, at_or_below = rank_bounds(data, value)
        target = fraction * len(data)
        assert below - error - 1 <= target <= at_or_below + error + 1, fraction
    edges = np.linspace(data.min(), data.max(), 21)
    estimated, exact = sketch.histogram(edges), np.histogram(data, edges)[0]
    assert np.abs(estimated - exact).max() <= 2 * error + 1
    assert estimated.sum() == pytest.approx(len(data))


def test_memory_stays_bounded_however_many_batches():
    sketch = merged([Quantiles.of(np.random.default_rng(seed).normal(size=3000)) for seed in range(512)])
    values, _ = sketch.items()
    assert len(sketch.runs) <= 11 and len(values) <= 11 * RUN_ITEMS and not sketch.pending


def test_merge_order_does_not_change_counts_and_stays_within_error():
    rng = np.random.default_rng(3)
    parts = np.array_split(rng.normal(size=100_000), 40)
    one_way = merged([Quantiles.of(part) for part in parts])
    shuffled = list(parts)
    random.Random(4).shuffle(shuffled)
    tree = [Quantiles.of(part) for part in shuffled]
    while len(tree) > 1:  # merged as a combiner tree would: pairs of accumulators
        tree = [merged(tree[index : index + 2]) for index in range(0, len(tree), 2)]
    other_way = tree[0]
    for sketch in (one_way, other_way):
        assert sketch.items()[1].sum() == pytest.approx(100_000)
    data = np.concatenate(parts)
    for sketch in (one_way, other_way):
        median = sketch.quantiles([0.5])[0]
        below, at_or_below = rank_bounds(data, median)
        assert below - sketch.rank_error() - 1 <= 50_000 <= at_or_below + sketch.rank_error() + 1


def test_outside_the_edges_counts_in_the_first_or_last_bin_and_empty_sketches_say_nothing():
    sketch = Quantiles.of(np.array([-5.0, 0.5, 1.5, 9.0]))
    assert sketch.histogram(np.array([0.0, 1.0, 2.0])).tolist() == [2.0, 2.0]
    assert all(np.isnan(value) for value in Quantiles().quantiles([0.5]))
    assert Quantiles().histogram(np.array([0.0, 1.0])).tolist() == [0.0]


def test_top_values_are_exact_below_capacity_and_never_over_count_beyond():
    counts = {f"v{index}".encode(): index + 1 for index in range(50)}
    top = TopValues.of(counts)
    assert top.top(3) == [(b"v49", 50), (b"v48", 49), (b"v47", 48)]
    rng = np.random.default_rng(5)
    stream = rng.zipf(1.5, size=200_000)
    truth: dict[bytes, int] = {}
    merged_top = TopValues()
    for part in np.array_split(stream, 50):
        values, numbers = np.unique(part, return_counts=True)
        batch = {str(value).encode(): int(count) for value, count in zip(values, numbers, strict=True)}
        for value, count in batch.items():
            truth[value] = truth.get(value, 0) + count
        merged_top.merge(TopValues.of(batch))
    assert len(merged_top.counts) <= TOP_CAPACITY and merged_top.dropped <= len(stream) / (TOP_CAPACITY + 1) * 2
    for value, count in merged_top.top(20):
        assert truth[value] - merged_top.dropped <= count <= truth[value]
    best = sorted(truth.items(), key=lambda item: -item[1])[:5]
    assert [value for value, _ in merged_top.top(5)] == [value for value, _ in best]


def test_a_long_value_is_counted_by_its_first_bytes():
    top = TopValues.of({b"x" * 1000: 2, b"x" * 999: 1})
    assert top.top(5) == [(b"x" * MAX_VALUE_BYTES, 3)] and top.count_of(b"x" * 2000) == 3


def test_distinct_is_exact_up_to_its_limit_then_estimated_within_a_few_percent():
    small = Distinct.of(hashes_of(f"{index % 500}".encode() for index in range(5000)))
    assert small.estimate() == 500
    large = Distinct()
    for start in range(0, 200_000, 10_000):
        large.merge(Distinct.of(hashes_of(str(index).encode() for index in range(start, start + 10_000))))
    assert large.exact is None and large.estimate() == pytest.approx(200_000, rel=0.05)
    boundary = Distinct.of(hashes_of(str(index).encode() for index in range(EXACT_DISTINCT)))
    boundary.merge(Distinct.of(hashes_of(str(index).encode() for index in range(EXACT_DISTINCT, EXACT_DISTINCT + 2))))
    assert boundary.exact is None and boundary.estimate() == pytest.approx(EXACT_DISTINCT + 2, rel=0.05)


def test_hashes_are_the_same_in_every_process():
    """Workers merge each other's hashes: a salted hash (Python's hash() of bytes) would count values twice."""
    script = "from pipeline.data.sketches import hashes_of; print(hashes_of([b'Biscoe', b'Dream']))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(TEMPLATE)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert seen == {f"{hashes_of([b'Biscoe', b'Dream'])}\n"}
