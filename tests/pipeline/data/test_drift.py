"""Drift against a baseline: nothing for the same data, flagged for shifted numbers and changed categories and
classes, measured as Vertex AI and TensorFlow Data Validation measure it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.drift import (
    JENSEN_SHANNON,
    L_INFINITY,
    drift_of,
    drifted,
    jensen_shannon,
    l_infinity,
)
from pipeline.data.statistics import NUMBER, STRING, Classes, Numbers, Strings, Summary


def strings(values: list[str]) -> Strings:
    return Strings.of(np.array([value.encode() for value in values], dtype=object))


def summary(numbers: np.ndarray, words: list[str], scores: np.ndarray | None = None) -> Summary:
    run = Summary(inputs={"x": Numbers.of(numbers), "word": strings(words)})
    if scores is not None:
        run.classes = Classes.of(scores)
    return run


def finished(run: Summary) -> dict:
    return run.finish("in", "m", ended=1.0)


def test_jensen_shannon_is_zero_alike_one_disjoint_and_symmetric():
    assert jensen_shannon([1, 2, 3], [2, 4, 6]) == 0.0
    assert jensen_shannon([1, 0], [0, 1]) == 1.0
    assert jensen_shannon([3, 1], [1, 3]) == pytest.approx(jensen_shannon([1, 3], [3, 1]))
    p, q = np.array([0.75, 0.25]), np.array([0.25, 0.75])
    middle = (p + q) / 2
    expected = 0.5 * np.sum(p * np.log2(p / middle)) + 0.5 * np.sum(q * np.log2(q / middle))
    assert jensen_shannon(p, q) == pytest.approx(expected)
    assert l_infinity([0.5, 0.5], [0.2, 0.8]) == pytest.approx(0.3)


def test_the_same_data_does_not_drift():
    rng = np.random.default_rng(1)
    numbers, words = rng.normal(size=5000), list(rng.choice(["a", "b", "c"], size=5000))
    scores = rng.dirichlet(np.ones(3), size=5000)
    baseline = finished(summary(numbers, words, scores))
    drift = drift_of(baseline, summary(numbers, words, scores), 0.3, "base.json")
    assert {key: value["distance"] for key, value in drift["features"].items()} == {
        "inputs.x": pytest.approx(0.0, abs=1e-4),  # 5,000 distinct values: sketched counts, written as integers
        "inputs.word": pytest.approx(0.0, abs=1e-12),
        "classes": pytest.approx(0.0, abs=1e-12),
    }
    assert drifted(drift) == [] and drift["baseline"] == "base.json" and drift["threshold"] == 0.3


def test_a_shifted_number_and_a_new_category_drift_and_a_resample_does_not():
    rng = np.random.default_rng(2)
    baseline = finished(summary(rng.normal(size=5000), list(rng.choice(["a", "b"], size=5000))))
    resampled = drift_of(baseline, summary(rng.normal(size=5000), list(rng.choice(["a", "b"], size=5000))), 0.3, "b")
    assert drifted(resampled) == []
    assert resampled["features"]["inputs.x"]["distance"] < 0.02
    shifted = summary(rng.normal(loc=2.0, size=5000), ["a"] * 1000 + ["new"] * 4000)
    drift = drift_of(baseline, shifted, 0.3, "b")
    assert drift["features"]["inputs.x"]["measure"] == JENSEN_SHANNON
    assert drift["features"]["inputs.x"]["distance"] > 0.3
    # "a" 0.5 -> 0.2, "b" 0.5 -> 0, "new" 0 -> 0.8: the baseline listed all its values, so "new" is its own
    assert drift["features"]["inputs.word"] == {"measure": L_INFINITY, "distance": pytest.approx(0.8), "drifted": True}
    assert set(drifted(drift)) == {"inputs.word", "inputs.x"}
    assert list(drift["features"]) == sorted(drift["features"], key=lambda key: -drift["features"][key]["distance"])


def test_values_beyond_a_partial_baseline_list_are_pooled_as_other():
    words = [f"w{index}" for index in range(40) for _ in range(index + 1)]  # 40 values: the top list holds 20
    baseline = finished(Summary(inputs={"word": strings(words)}))
    assert len(baseline["inputs"]["word"]["top"]) == 20
    drift = drift_of(baseline, Summary(inputs={"word": strings(["unseen"] * 10)}), 0.3, "b")
    shares = [count / len(words) for _, count in baseline["inputs"]["word"]["top"]]  # this run has none of them
    assert drift["features"]["inputs.word"]["distance"] == pytest.approx(sum(shares))  # "other": 1 against 1 - sum


def test_class_frequencies_drift_by_l_infinity():
    base_scores = np.eye(3)[[0] * 50 + [1] * 30 + [2] * 20]
    now_scores = np.eye(3)[[0] * 10 + [1] * 30 + [2] * 60]
    baseline = finished(Summary(classes=Classes.of(base_scores)))
    drift = drift_of(baseline, Summary(classes=Classes.of(now_scores)), 0.3, "b")
    assert drift["features"] == {"classes": {"measure": L_INFINITY, "distance": pytest.approx(0.4), "drifted": True}}


def test_values_outside_the_baselines_edges_count_in_its_first_or_last_bin():
    baseline = finished(Summary(inputs={"x": Numbers.of(np.arange(100.0))}))
    far = drift_of(baseline, Summary(inputs={"x": Numbers.of(np.full(100, 1e9))}), 0.3, "b")
    counts = np.array(baseline["inputs"]["x"]["histogram"]["counts"])
    expected = jensen_shannon(counts, np.eye(len(counts))[-1])
    assert far["features"]["inputs.x"]["distance"] == pytest.approx(expected)


def test_features_the_baseline_lacks_or_has_of_another_kind_are_not_compared():
    baseline = finished(Summary(inputs={"x": strings(["a"]), "y": Numbers.of(np.ones(3))}))
    assert baseline["inputs"]["x"]["kind"] == STRING and baseline["inputs"]["y"]["kind"] == NUMBER
    run = Summary(inputs={"x": Numbers.of(np.ones(3)), "z": Numbers.of(np.ones(3))})
    assert drift_of(baseline, run, 0.3, "b")["features"] == {}
    assert drifted(None) == []
