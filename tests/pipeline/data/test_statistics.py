"""The run's statistics checked against numpy and pandas on the same data; merged across bundles, the same as one
pass; finished, valid against the stats JSON's schema."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.statistics import (
    BINS,
    BYTES,
    NUMBER,
    QUANTILES,
    STRING,
    Bytes,
    Classes,
    Numbers,
    Strings,
    Summary,
    feature_kind,
)
from pipeline.model.signatures import TensorSpec
from tests.conftest import ROOT, SAMPLES

SCHEMA = json.loads((ROOT / "template/pipeline/data/stats_schema.json").read_text())
PENGUINS = pd.read_json(SAMPLES / "penguins/penguins.jsonl", lines=True)


def validate(stats: dict) -> None:
    jsonschema.validate(stats, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def merged(parts: list) -> object:
    first = parts[0]
    for part in parts[1:]:
        first.merge(part)
    return first


def test_numbers_match_numpy_and_pandas():
    column = PENGUINS["body_mass_g"].to_numpy(dtype=np.float32)
    finished = Numbers.of(column).finish()
    series = PENGUINS["body_mass_g"].astype("float64")
    assert finished["count"] == len(column) and finished["missing"] == 0 and finished["values_per_record"] == 1
    assert finished["mean"] == pytest.approx(series.mean(), rel=1e-12)
    assert finished["std"] == pytest.approx(series.std(ddof=0), rel=1e-12)
    assert (finished["min"], finished["max"]) == (series.min(), series.max())
    expected = np.quantile(column, QUANTILES, method="inverted_cdf")
    assert list(finished["quantiles"].values()) == pytest.approx(expected)
    assert list(finished["quantiles"]) == ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]
    edges = np.linspace(series.min(), series.max(), BINS + 1)
    assert finished["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert finished["histogram"]["counts"] == np.histogram(column, edges)[0].tolist()


def test_merging_bundles_equals_one_pass():
    rng = np.random.default_rng(7)
    data = (rng.normal(50, 10, size=(30_000, 3)) + 1e6).astype(np.float64)  # a large mean tests the update
    one_pass = Numbers.of(data).finish()
    for splits in (2, 7, 64):
        parts = [Numbers.of(part) for part in np.array_split(data, splits)]
        again = merged(parts).finish()
        assert again["count"] == one_pass["count"] == 30_000
        assert again["mean"] == pytest.approx(one_pass["mean"], rel=1e-14)
        assert again["std"] == pytest.approx(one_pass["std"], rel=1e-9)
        assert (again["min"], again["max"]) == (one_pass["min"], one_pass["max"])
        for fraction, value in again["quantiles"].items():  # within the sketch's error, in ranks
            rank = np.searchsorted(np.sort(data, axis=None), value)
            assert abs(rank - float(fraction) * data.size) <= data.size * 0.01


def test_an_input_wider_than_one_value_is_summarised_over_its_values_and_non_finite_records_are_missing():
    images = np.random.default_rng(8).integers(0, 256, size=(50, 28, 28)).astype(np.float32) / 255
    images[3, 0, 0] = np.nan
    images[9, 5, 5] = np.inf
    finished = Numbers.of(images).finish()
    finite = images[np.isfinite(images)]
    assert finished["count"] == 50 and finished["missing"] == 2 and finished["values_per_record"] == 784
    assert finished["mean"] == pytest.approx(finite.astype(np.float64).mean())
    assert finished["histogram"]["counts"] == np.histogram(finite, np.array(finished["histogram"]["edges"]))[0].tolist()
    nothing = Numbers.of(np.full((2, 3), np.nan, dtype=np.float32)).finish()
    assert nothing["missing"] == 2 and nothing["mean"] is None and nothing["histogram"] is None


def test_strings_match_pandas_value_counts():
    islands = PENGUINS["island"].to_numpy()
    parts = [
        Strings.of(np.array([value.encode() for value in part], dtype=object)) for part in np.array_split(islands, 5)
    ]
    finished = merged(parts).finish()
    counts = PENGUINS["island"].value_counts()
    assert finished["top"] == [[island, int(count)] for island, count in counts.items()]
    assert finished["distinct"] == PENGUINS["island"].nunique() and finished["count"] == len(islands)
    assert Strings.of(np.array([b"", b"a", "a"], dtype=object)).finish()["top"] == [["a", 2], ["", 1]]


def test_bytes_are_summarised_by_their_sizes():
    values = np.array([b"\x89PNG" * 10, b"", b"abc"], dtype=object)
    finished = Bytes.of(values).finish()
    assert finished["kind"] == BYTES and finished["missing"] == 1
    assert finished["size"]["mean"] == pytest.approx(np.mean([40, 0, 3]))
    assert (finished["size"]["min"], finished["size"]["max"]) == (0, 40)
    assert "count" not in finished["size"]


def test_classes_count_the_argmax_and_summarise_the_confidence():
    scores = np.random.default_rng(9).dirichlet(np.ones(4), size=500).astype(np.float32)
    scores[10] = np.nan  # dead-lettered when rows are made: neither a class nor a confidence
    parts = [Classes.of(part) for part in np.array_split(scores, 3)]
    finished = merged(parts).finish(["a", "b", "c", "d"])
    kept = np.delete(scores, 10, axis=0)
    assert finished["counts"] == np.bincount(kept.argmax(axis=1), minlength=4).tolist()
    confidence = kept.max(axis=1)
    assert sum(finished["confidence"]["counts"]) == len(kept)
    assert finished["confidence"]["edges"][0] == confidence.min() and finished["names"] == ["a", "b", "c", "d"]


def test_feature_kinds_follow_the_signature():
    assert feature_kind(TensorSpec("image", "float32", (784,))) == NUMBER
    assert feature_kind(TensorSpec("island", "string", ())) == STRING
    assert feature_kind(TensorSpec("image_bytes", "string", ())) == BYTES
    assert feature_kind(TensorSpec("png", "string", ()), whole_files=True) == BYTES


def _instances(images: np.ndarray) -> InstanceBatch:
    source = RecordBatch("in.txt", 1, [b""] * len(images))
    return InstanceBatch(np.arange(len(images)), {"image": images}, source, np.arange(len(images)))


def test_a_summary_of_a_run_finishes_as_a_valid_stats_json():
    rng = np.random.default_rng(10)
    images = rng.random((20, 784), dtype=np.float32)
    batch = _instances(images)
    scores = rng.dirichlet(np.ones(10), size=20).astype(np.float32)
    summary = Summary.of_instances(batch, {"image": NUMBER}, seen=100.0)
    summary.merge(Summary.of_scored(ScoredBatch(batch, {"scores": scores}, 3), {"scores": NUMBER}, "scores", 101.0))
    for index in range(5):
        letter = DeadLetter("in.txt", b"x", "bad_key", f"bad key {index}", position=f"in.txt:{index}")
        summary.merge(Summary.of_dead_letter(letter, read=True))
    stats = summary.finish("in.txt", "model", ended=104.0)
    validate(stats)
    run = stats["run"]
    assert (run["records_read"], run["predictions"], run["dead_letters"]) == (25, 20, 5)
    assert run["dead_letters_by_reason"] == {"bad_key": 5} and run["model_versions"] == [3]
    assert [example["message"] for example in run["dead_letter_examples"]["bad_key"]] == [
        "bad key 0",
        "bad key 1",
        "bad key 2",
    ]
    assert run["duration_s"] == 4.0 and run["rate_per_s"] == 25 / 4 and run["started"].startswith("1970-01-01T00:01:40")
    assert stats["classes"]["counts"] == np.bincount(scores.argmax(axis=1), minlength=10).tolist()
    assert stats["inputs"]["image"]["values_per_record"] == 784 and stats["drift"] is None


def test_an_empty_run_and_a_statistics_only_run_are_valid_too():
    empty = Summary().finish("in", "m", ended=5.0)
    validate(empty)
    assert empty["run"]["records_read"] == 0 and empty["inputs"] == {} and empty["classes"] is None
    only = Summary.of_instances(_instances(np.zeros((4, 784), np.float32)), {"image": NUMBER}, 1.0)
    finished = only.finish("in", "m", ended=2.0, predicts=False)
    validate(finished)
    assert finished["run"]["predictions"] == 0 and finished["run"]["statistics_only"] is True


def test_the_schema_refuses_what_is_not_a_stats_json():
    stats = Summary().finish("in", "m", ended=5.0)
    for broken in (
        {**stats, "schema_version": 2},
        {**stats, "inputs": {"x": {"kind": "number", "count": 1, "missing": 0, "values_per_record": 1}}},
        {**stats, "inputs": {"x": {"kind": "text", "count": 1, "missing": 0, "values_per_record": 1}}},
        {**stats, "drift": {"baseline": "b", "threshold": 0.3, "features": {"x": {}}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)
