"""Stats dicts in the run-statistics schema (docs/report.md), made with numpy from the samples' own data: the
report's tests draw real distributions, not invented ones.

* `mnist_stats()`: a classifier run over the MNIST sample's images (one input of 784 values a record), its
  class counts from the official labels and a confidence histogram, two kinds of dead letters (one message
  holding markup, which the report must show as text);
* `penguins_stats(rows, baseline=...)`: the penguins model's named inputs (strings and numbers) and outputs; with
  a baseline's stats, the drift of each input and output as the schema measures it (Jensen-Shannon divergence
  over the baseline's bins for numbers, L-infinity distance over top-value shares for strings).
"""

from __future__ import annotations

import csv
import gzip
import math
from collections import Counter
from typing import Any

import numpy as np

from tests.conftest import SAMPLE_IMAGES, SAMPLE_LABELS, SAMPLES

PENGUINS_CSV = SAMPLES / "penguins" / "penguins.csv"
PENGUIN_NUMBERS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
PENGUIN_STRINGS = ("island", "sex")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
QUANTILES = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")
BINS = 20
THRESHOLD = 0.3


def histogram(values: np.ndarray, edges: np.ndarray | None = None) -> dict[str, list]:
    """20 equal-width bins over [min, max]; over given edges, values outside them in the first or last bin."""
    if edges is None:
        edges = np.linspace(values.min(), values.max(), BINS + 1)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return {"edges": [float(edge) for edge in edges], "counts": [int(count) for count in counts]}


def number_feature(values: np.ndarray, records: int) -> dict[str, Any]:
    """A number input or output over all its values (an image's 784 a record)."""
    flat = values.astype(np.float64).ravel()
    return {
        "kind": "number",
        "count": records,
        "missing": 0,
        "values_per_record": flat.size // max(records, 1),
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "quantiles": {q: float(np.quantile(flat, float(q))) for q in QUANTILES},
        "histogram": histogram(flat),
    }


def string_feature(values: list[str]) -> dict[str, Any]:
    counts = Counter(values)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:20]
    return {
        "kind": "string",
        "count": len(values),
        "missing": 0,
        "values_per_record": 1,
        "distinct": len(counts),
        "top": [[value, count] for value, count in top],
    }


def mnist_stats(records: int = 2000) -> dict[str, Any]:
    """The MNIST sample's first `records` images as the demo's classifier run would summarise them."""
    with gzip.open(SAMPLE_IMAGES, "rt") as handle:
        lines = [next(handle) for _ in range(records)]
    images = np.array([line.split(":", 1)[1].split(",") for line in lines], dtype=np.float32)
    with gzip.open(SAMPLE_LABELS, "rb") as handle:
        labels = np.frombuffer(handle.read()[8 : 8 + records], dtype=np.uint8)
    confidence = 1.0 - np.random.default_rng(7).beta(0.3, 12.0, records)  # mostly sure, a tail of doubt
    probabilities = np.full((records, 10), 0.0)
    probabilities[np.arange(records), labels] = confidence
    dead = {"wrong_value_count": 3, "non_numeric_value": 1}
    return {
        "schema_version": 1,
        "run": {
            "input": "samples/mnist/images.txt.gz",
            "model": "samples/model",
            "started": "2026-11-28T06:00:04Z",
            "duration_s": 8.4,
            "records_read": records + 4,
            "predictions": records,
            "dead_letters": 4,
            "dead_letters_by_reason": dead,
            "dead_letter_examples": {
                "wrong_value_count": [
                    {"origin": "samples/mnist/images.txt.gz", "position": "line 17", "message": "783 values, not 784"},
                    {"origin": "samples/mnist/images.txt.gz", "position": "line 90", "message": "785 values, not 784"},
                ],
                "non_numeric_value": [
                    {
                        "origin": "gs://bucket/<script>alert('x')</script>.txt",
                        "position": None,
                        "message": 'value 12 is "<b>bold</b>" & not a number',
                    }
                ],
            },
            "model_versions": [],
            "rate_per_s": records / 8.4,
        },
        "inputs": {"images": number_feature(images, records)},
        "outputs": {"scores": number_feature(probabilities, records)},
        "classes": {
            "names": None,
            "counts": [int(count) for count in np.bincount(labels, minlength=10)],
            "confidence": histogram(confidence, np.linspace(0.0, 1.0, BINS + 1)),
        },
        "drift": None,
    }


def penguin_rows(island: str | None = None, *, others: bool = False) -> list[dict[str, str]]:
    """The penguins sample's rows: all, those of `island`, or (others=True) those of every other island."""
    with PENGUINS_CSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if island is None:
        return rows
    return [row for row in rows if (row["island"] == island) != others]


def penguins_stats(rows: list[dict[str, str]], baseline: dict[str, Any] | None = None) -> dict[str, Any]:
    """The penguins model's run over `rows`; with `baseline` (another run's stats), the drift of each feature."""
    inputs: dict[str, Any] = {name: string_feature([row[name] for row in rows]) for name in PENGUIN_STRINGS}
    for name in PENGUIN_NUMBERS:
        inputs[name] = number_feature(np.array([float(row[name]) for row in rows]), len(rows))
    species = [row["species"] for row in rows]
    probabilities = np.array([[0.9 if kind == name else 0.05 for name in SPECIES] for kind in species])
    outputs = {"probabilities": number_feature(probabilities, len(rows)), "species": string_feature(species)}
    stats = {
        "schema_version": 1,
        "run": {
            "input": "build/drift/biscoe.csv" if baseline else "build/drift/others.csv",
            "model": "samples/penguins/model",
            "started": "2026-11-28T06:00:04Z",
            "duration_s": 3.1,
            "records_read": len(rows),
            "predictions": len(rows),
            "dead_letters": 0,
            "dead_letters_by_reason": {},
            "dead_letter_examples": {},
            "model_versions": [3],
            "rate_per_s": len(rows) / 3.1,
        },
        "inputs": inputs,
        "outputs": outputs,
        "classes": None,
        "drift": None,
    }
    if baseline is not None:
        stats["drift"] = {"baseline": "build/drift/baseline-stats.json", "threshold": THRESHOLD, "features": {}}
        for group in ("inputs", "outputs"):
            for name, feature in stats[group].items():
                measure, distance = drift(feature, baseline[group][name], rows, group, name)
                stats["drift"]["features"][f"{group}.{name}"] = {
                    "measure": measure,
                    "distance": distance,
                    "drifted": distance > THRESHOLD,
                }
    return stats


def drift(feature: dict, base: dict, rows: list[dict[str, str]], group: str, name: str) -> tuple[str, float]:
    if feature["kind"] == "string":
        run_shares = {value: count / feature["count"] for value, count in feature["top"]}
        base_shares = {value: count / base["count"] for value, count in base["top"]}
        values = run_shares.keys() | base_shares.keys()
        other = abs((1 - sum(run_shares.values())) - (1 - sum(base_shares.values())))
        return "l_infinity", max([abs(run_shares.get(v, 0) - base_shares.get(v, 0)) for v in values] + [other])
    if group == "inputs":
        values = np.array([float(row[name]) for row in rows])
    else:  # the one number output here: the probabilities, as penguins_stats makes them
        values = np.array([[0.9 if kind == n else 0.05 for n in SPECIES] for kind in (r["species"] for r in rows)])
    edges = np.array(base["histogram"]["edges"])
    p = np.array(histogram(values.ravel(), edges)["counts"], dtype=float)
    q = np.array(base["histogram"]["counts"], dtype=float)
    return "jensen_shannon", jensen_shannon(p / p.sum(), q / q.sum())


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        return float(sum(x * math.log2(x / y) for x, y in zip(a, m, strict=True) if x > 0))

    return (kl(p) + kl(q)) / 2
