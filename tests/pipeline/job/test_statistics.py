"""The statistics step end to end on DirectRunner: `<output>-stats.json` written beside the predictions, valid
against its schema and equal to numpy's and pandas' figures on the same records; a baseline's drift counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import jsonschema
import numpy as np
import pandas as pd
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import StatisticsPlan
from pipeline.data.dead_letters import Reason
from pipeline.data.statistics import Summary
from pipeline.job.graph import build
from pipeline.job.metrics import NAMESPACE
from pipeline.job.statistics import (
    DRIFTED_FEATURES,
    DRIFTED_PREFIX,
    HELD_VALUES,
    HeldBatches,
    _FinishFn,
    stats_path,
    write_stats,
)
from pipeline.launch.validation import validate
from tests.conftest import ROOT, SAMPLE_MODEL, SAMPLES
from tests.streaming import Stream, eventually, streaming_job

SCHEMA = json.loads((ROOT / "template/pipeline/data/stats_schema.json").read_text())
PENGUINS = SAMPLES / "penguins"
BAD_LINES = {b"no key here": Reason.MISSING_KEY, b"x1:" + b",".join([b"0"] * 784): Reason.BAD_KEY}


def run(*args: str) -> tuple[dict, dict[str, int]]:
    """Runs the job; its stats JSON (checked against the schema) and its counters by name."""
    options = PipelineOptions(list(args))
    config = validate(options)
    pipeline = beam.Pipeline(options=options)
    written = build(pipeline, config)
    assert written is not None
    result = pipeline.run()
    result.wait_until_finish()
    assert config.statistics is not None
    stats = json.loads(Path(stats_path(config.statistics.location)).read_text())
    jsonschema.validate(stats, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    return stats, {item.key.metric.name: item.committed for item in counters}


@pytest.fixture(scope="module")
def mnist_input(tmp_path_factory, sample_lines) -> Path:
    lines = list(sample_lines[:300])
    for position, bad in enumerate(BAD_LINES):
        lines.insert(position * 100 + 7, bad)
    path = tmp_path_factory.mktemp("mnist") / "images.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_an_mnist_run_writes_its_statistics_beside_its_predictions(tmp_path, mnist_input, sample_lines, sample_scores):
    output = tmp_path / "out" / "predictions"
    stats, counters = run(f"--input={mnist_input}", f"--output={output}", f"--model={SAMPLE_MODEL}", "--batch_size=64")
    assert (tmp_path / "out" / "predictions-stats.json").is_file()
    run_figures = stats["run"]
    assert (run_figures["records_read"], run_figures["predictions"], run_figures["dead_letters"]) == (302, 300, 2)
    assert run_figures["dead_letters_by_reason"] == {reason: 1 for reason in BAD_LINES.values()}
    assert run_figures["dead_letter_examples"][Reason.BAD_KEY][0]["position"] == f"{mnist_input}:108"
    assert run_figures["input"] == str(mnist_input) and run_figures["model"] == str(SAMPLE_MODEL)
    assert run_figures["duration_s"] > 0 and run_figures["rate_per_s"] > 0 and not run_figures["statistics_only"]

    images = np.array([[float(value) for value in line.split(b":")[1].split(b",")] for line in sample_lines[:300]])
    image = stats["inputs"]["image"]
    assert (image["count"], image["missing"], image["values_per_record"]) == (300, 0, 784)
    assert image["mean"] == pytest.approx(images.mean()) and image["std"] == pytest.approx(images.std())
    assert image["histogram"]["counts"] == np.histogram(images, np.array(image["histogram"]["edges"]))[0].tolist()

    scores = sample_scores[:300]
    assert stats["classes"]["counts"] == np.bincount(scores.argmax(axis=1), minlength=10).tolist()
    assert sum(stats["classes"]["confidence"]["counts"]) == 300
    assert stats["outputs"]["scores"]["values_per_record"] == 10 and stats["drift"] is None
    assert not any(name.startswith(DRIFTED_PREFIX) for name in counters)


def penguin_lines(island: str | None = None, other_than: str | None = None) -> list[str]:
    lines = (PENGUINS / "penguins.jsonl").read_text().splitlines()
    return [
        line
        for line in lines
        if (island is None or json.loads(line)["island"] == island)
        and (other_than is None or json.loads(line)["island"] != other_than)
    ]


def test_a_penguins_run_summarises_strings_and_numbers_as_pandas_does(tmp_path):
    stats, _ = run(
        f"--input={PENGUINS / 'penguins.jsonl'}", f"--output={tmp_path / 'p'}", f"--model={PENGUINS / 'model'}"
    )
    rows = pd.read_json(PENGUINS / "penguins.jsonl", lines=True)
    island = stats["inputs"]["island"]
    assert island["kind"] == "string" and island["distinct"] == 3
    assert island["top"] == [[name, int(count)] for name, count in rows["island"].value_counts().items()]
    mass = stats["inputs"]["body_mass_g"]
    assert mass["mean"] == pytest.approx(rows["body_mass_g"].mean()) and mass["max"] == rows["body_mass_g"].max()
    assert mass["quantiles"]["0.5"] == np.quantile(rows["body_mass_g"], 0.5, method="inverted_cdf")
    species = stats["outputs"]["species"]
    assert species["kind"] == "string" and sum(count for _, count in species["top"]) == len(rows)
    assert stats["outputs"]["probabilities"]["values_per_record"] == 3
    assert stats["classes"] is None  # two outputs: not the classifier contract's one score output


def test_one_islands_penguins_drift_from_the_others_baseline_where_they_really_differ(tmp_path):
    """Biscoe is where the Gentoo colony is: heavier birds with deeper bills and longer flippers. Its island
    drifts (a value the baseline never saw), and so do those measurements; sex and bill length do not."""
    others, biscoe = tmp_path / "others.jsonl", tmp_path / "biscoe.jsonl"
    others.write_text("\n".join(penguin_lines(other_than="Biscoe")) + "\n")
    biscoe.write_text("\n".join(penguin_lines(island="Biscoe")) + "\n")
    model = f"--model={PENGUINS / 'model'}"
    baseline, _ = run(f"--input={others}", f"--output={tmp_path / 'baseline'}", model, "--statistics=only")
    assert baseline["run"]["statistics_only"] and baseline["run"]["predictions"] == 0
    assert baseline["outputs"] == {} and baseline["run"]["records_read"] == 170
    assert not list(tmp_path.glob("baseline-*.jsonl")) and not list(tmp_path.glob("baseline_error_records*"))

    stats, counters = run(
        f"--input={biscoe}", f"--output={tmp_path / 'biscoe'}", model, f"--baseline={tmp_path / 'baseline-stats.json'}"
    )
    drift = stats["drift"]
    assert drift["baseline"] == str(tmp_path / "baseline-stats.json") and drift["threshold"] == 0.3
    assert drift["features"]["inputs.island"] == {"measure": "l_infinity", "distance": 1.0, "drifted": True}
    flagged = {name for name, feature in drift["features"].items() if feature["drifted"]}
    expected = {"inputs.island", "inputs.flipper_length_mm", "inputs.bill_depth_mm", "inputs.body_mass_g"}
    assert flagged == expected
    assert set(drift["features"]) - flagged == {"inputs.sex", "inputs.bill_length_mm"}
    assert drift["features"]["inputs.sex"]["distance"] < 0.05
    assert counters[DRIFTED_FEATURES] == 4
    assert {name for name in counters if name.startswith(DRIFTED_PREFIX)} == {
        DRIFTED_PREFIX + name for name in expected
    } | {DRIFTED_FEATURES}


def test_the_drift_threshold_decides_what_is_flagged(tmp_path):
    lines = penguin_lines()
    whole = tmp_path / "all.jsonl"
    whole.write_text("\n".join(lines) + "\n")
    model = f"--model={PENGUINS / 'model'}"
    run(f"--input={whole}", f"--output={tmp_path / 'base'}", model)
    again, counters = run(
        f"--input={whole}", f"--output={tmp_path / 'again'}", model, f"--baseline={tmp_path / 'base-stats.json'}"
    )
    distances = {name: feature["distance"] for name, feature in again["drift"]["features"].items()}
    assert set(distances) == {f"inputs.{name}" for name in again["inputs"]} | {
        f"outputs.{name}" for name in again["outputs"]
    }
    assert max(distances.values()) == pytest.approx(0.0, abs=1e-12) and counters[DRIFTED_FEATURES] == 0


def test_a_streaming_job_writes_its_statistics_every_period(pubsub_emulator, tmp_path, sample_lines):
    """Each file holds the records summarised since the one before: together, every record once."""
    stream = Stream(pubsub_emulator, "stats")
    prefix = tmp_path / "out" / "predictions"

    def written() -> list[dict]:
        return [json.loads(path.read_text()) for path in sorted(prefix.parent.glob("predictions-stats-*.json"))]

    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={prefix}",
        f"--model={SAMPLE_MODEL}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
        "--window_seconds=2",
    ):
        stream.publish([*sample_lines[:10], b"no key here"])
        assert eventually(lambda: sum(stats["run"]["records_read"] for stats in written()) == 11, timeout_s=60)
        stream.publish(sample_lines[10:15])
        assert eventually(lambda: sum(stats["run"]["records_read"] for stats in written()) == 16, timeout_s=60)
    files = written()
    assert len(files) >= 2
    for stats in files:
        jsonschema.validate(stats, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert sum(stats["run"]["predictions"] for stats in files) == 15
    assert sum(stats["run"]["dead_letters_by_reason"].get(Reason.MISSING_KEY, 0) for stats in files) == 1
    assert sum(stats["inputs"]["image"]["count"] for stats in files if "image" in stats["inputs"]) == 15


def test_held_batches_are_summarised_at_once_as_each_alone_would_be():
    rng = np.random.default_rng(11)
    batches = [rng.normal(size=(int(size), 3)).astype(np.float32) for size in rng.integers(1, 300, size=300)]
    held = HeldBatches(outputs=False, kinds={"x": "number"})
    summaries = [summary for batch in batches if (summary := held.add({"x": batch}, len(batch))) is not None]
    last = held.take()
    assert last is not None and held.take() is None
    together = summaries[0]
    for summary in [*summaries[1:], last]:
        together.merge(summary)
    one_by_one = Summary.of_inputs({"x": np.concatenate(batches)}, {"x": "number"}, sum(map(len, batches)))
    assert together.records_read == one_by_one.records_read == sum(len(batch) for batch in batches)
    mine, theirs = together.inputs["x"].finish(), one_by_one.inputs["x"].finish()
    assert mine["mean"] == pytest.approx(theirs["mean"]) and mine["std"] == pytest.approx(theirs["std"])
    assert 1 <= len(summaries) <= sum(batch.size for batch in batches) // HELD_VALUES  # a few summaries, not 300


def test_held_batches_of_different_shapes_are_summarised_each_as_it_is():
    held = HeldBatches(outputs=True, kinds={"tokens": "string", "scores": "number"}, classifier="scores")
    held.add({"tokens": np.array([[b"a", b"b"]], dtype=object), "scores": np.array([[0.1, 0.9]])}, 1, version=2)
    held.add({"tokens": np.array([[b"a"], [b"c"]], dtype=object), "scores": np.array([[0.8, 0.2], [0.3, 0.7]])}, 2)
    summary = held.take()
    assert summary is not None and summary.versions == {2} and summary.records_read == 0
    tokens = summary.outputs["tokens"].finish()
    assert tokens["count"] == 3 and tokens["top"] == [["a", 2], ["b", 1], ["c", 1]]
    assert summary.classes is not None and summary.classes.counts.tolist() == [1, 2]


def test_statistics_files_are_named_beside_their_location_and_written_whole(tmp_path):
    assert stats_path("gs://b/out/p") == "gs://b/out/p-stats.json"
    assert stats_path("out/p", fired=0.5) == "out/p-stats-19700101T000000.500000Z.json"
    path = tmp_path / "new" / "folder" / "p-stats.json"
    write_stats(str(path), {"schema_version": 1})
    write_stats(str(path), {"schema_version": 1, "run": {}})
    assert json.loads(path.read_text()) == {"schema_version": 1, "run": {}}


def test_statistics_that_cannot_be_made_or_written_are_logged_never_a_failed_job(tmp_path, caplog):
    held = HeldBatches(outputs=False, kinds={"x": "number"})  # text where numbers were planned
    held.add({"x": np.array([b"a", b"b"], dtype=object)}, 2)
    summary = held.take()
    assert summary is not None and summary.records_read == 2 and summary.inputs == {}
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    finish = _FinishFn(StatisticsPlan(str(blocked / "p")), "in", "model", streaming=False)
    assert list(finish.process(Summary())) == []
    messages = [record.getMessage() for record in caplog.records]
    assert any("summarising inputs failed" in message for message in messages)
    assert any("writing the statistics failed" in message for message in messages)


def test_whole_files_fed_as_bytes_are_summarised_by_their_sizes(tmp_path):
    digits = sorted((SAMPLES / "png" / "digits").glob("*.png"))[:40]
    for path in digits:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    stats, _ = run(
        f"--input={tmp_path / '*.png'}", f"--output={tmp_path / 'out' / 'p'}", f"--model={SAMPLES / 'png/model'}"
    )
    image = stats["inputs"]["image_bytes"]
    sizes = np.array([path.stat().st_size for path in digits])
    assert (image["kind"], image["count"], image["missing"]) == ("bytes", 40, 0)
    assert image["size"]["mean"] == pytest.approx(sizes.mean()) and image["size"]["max"] == sizes.max()
    assert sum(stats["classes"]["counts"]) == 40
