"""Drift of a run against a baseline stats JSON (an earlier run, or the training data's statistics).

The measures are those of Vertex AI Model Monitoring and TensorFlow Data Validation
(cloud.google.com/vertex-ai/docs/model-monitoring/overview, "Calculating skew and drift", and the
ThresholdConfig reference: L-infinity for categorical features, Jensen-Shannon divergence for
numerical ones; tensorflow.org/tfx/data_validation/get_started, "Checking data skew and drift"):

* numbers (and the sizes of bytes): the Jensen-Shannon divergence, base 2 (in [0, 1]), between the
  baseline's histogram and this run's counts over the baseline's bin edges (values outside them in the
  first or last bin), read from this run's quantile sketch rather than from its own histogram;
* strings: the L-infinity distance between the value frequencies: the baseline's top values, and this
  run's too where the baseline's list holds all its values; the rest of each pooled as one "other";
* classes: the L-infinity distance between the class frequencies.

A feature is drifted when its distance exceeds the threshold (Vertex AI's default alert threshold
is 0.3). Features the baseline lacks, or has of another kind, are not compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.data.statistics import BYTES, NUMBER, STRING, Bytes, Classes, Feature, Numbers, Strings, Summary

DEFAULT_THRESHOLD = 0.3
JENSEN_SHANNON, L_INFINITY = "jensen_shannon", "l_infinity"


def _shares(counts: Any) -> np.ndarray:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array


def jensen_shannon(first: Any, second: Any) -> float:
    """The Jensen-Shannon divergence (base 2) of two histograms over the same bins: 0 alike, 1 disjoint."""
    p, q = _shares(first), _shares(second)
    middle = (p + q) / 2

    def kullback_leibler(shares: np.ndarray) -> float:
        present = shares > 0
        return float(np.sum(shares[present] * np.log2(shares[present] / middle[present])))

    return min(max((kullback_leibler(p) + kullback_leibler(q)) / 2, 0.0), 1.0)


def l_infinity(first: Any, second: Any) -> float:
    """The largest difference between two frequency vectors (of shares) over the same categories."""
    return float(np.max(np.abs(np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64))))


def number_distance(histogram: dict[str, Any] | None, current: Numbers) -> float | None:
    if not histogram or not current.values:
        return None
    edges = np.asarray(histogram["edges"], dtype=np.float64)
    return jensen_shannon(histogram["counts"], current.sketch.histogram(edges))


def string_distance(baseline: dict[str, Any], current: Strings) -> float | None:
    baseline_total = baseline["count"] * max(baseline.get("values_per_record", 1), 1)
    current_total = current.records * max(current.width, 1)
    if not baseline_total or not current_total:
        return None
    counts = {value.encode("utf-8"): count for value, count in baseline["top"]}
    values = list(counts)
    if sum(counts.values()) >= baseline_total:  # the baseline's list holds all its values: others are new
        values += [value for value, _ in current.top.top(len(current.top.counts)) if value not in counts]
    before = [counts.get(value, 0) / baseline_total for value in values]
    after = [current.top.count_of(value) / current_total for value in values]
    return l_infinity([*before, max(1 - sum(before), 0.0)], [*after, max(1 - sum(after), 0.0)])


def class_distance(baseline: dict[str, Any], current: Classes) -> float | None:
    before, after = list(baseline["counts"]), current.counts.tolist()
    if not sum(before) or not sum(after):
        return None
    size = max(len(before), len(after))
    return l_infinity(_shares(before + [0] * (size - len(before))), _shares(after + [0] * (size - len(after))))


def _distance(baseline: dict[str, Any], feature: Feature) -> tuple[str, float | None]:
    if isinstance(feature, Numbers):
        return JENSEN_SHANNON, number_distance(baseline.get("histogram"), feature)
    if isinstance(feature, Bytes):
        return JENSEN_SHANNON, number_distance((baseline.get("size") or {}).get("histogram"), feature.sizes)
    return L_INFINITY, string_distance(baseline, feature)


def _kind(feature: Feature) -> str:
    return NUMBER if isinstance(feature, Numbers) else BYTES if isinstance(feature, Bytes) else STRING


def drift_of(baseline: dict[str, Any], summary: Summary, threshold: float, location: str) -> dict[str, Any]:
    """The stats JSON's `drift`: each feature both runs have, most distant first."""
    features: dict[str, dict[str, Any]] = {}
    for section, mine in (("inputs", summary.inputs), ("outputs", summary.outputs)):
        for name, feature in mine.items():
            theirs = (baseline.get(section) or {}).get(name)
            if not isinstance(theirs, dict) or theirs.get("kind") != _kind(feature):
                continue
            measure, distance = _distance(theirs, feature)
            if distance is not None:
                features[f"{section}.{name}"] = {"measure": measure, "distance": distance}
    if summary.classes is not None and isinstance(baseline.get("classes"), dict):
        distance = class_distance(baseline["classes"], summary.classes)
        if distance is not None:
            features["classes"] = {"measure": L_INFINITY, "distance": distance}
    ordered = sorted(features.items(), key=lambda item: (-item[1]["distance"], item[0]))
    return {
        "baseline": location,
        "threshold": threshold,
        "features": {key: {**value, "drifted": value["distance"] > threshold} for key, value in ordered},
    }


def drifted(drift: dict[str, Any] | None) -> list[str]:
    """The drifted features of a stats JSON's `drift` (`inputs.<name>`, `outputs.<name>`, `classes`)."""
    if not drift:
        return []
    return [key for key, value in drift["features"].items() if value["drifted"]]
