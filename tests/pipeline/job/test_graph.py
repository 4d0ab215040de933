"""The whole graph on DirectRunner: same numbers as the model called directly, and every
record accounted for in predictions, dead letters and counters."""

from __future__ import annotations

import gzip
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.data.dead_letters import Reason
from pipeline.job.graph import build
from pipeline.job.metrics import read_counts
from pipeline.launch.validation import validate
from tests.conftest import SAMPLE_MODEL
from tests.model_factories import WIDTH, failing_saved_model, nan_scoring_saved_model, reference_scores
from tests.outputs import read_json_lines

BAD_LINES = {
    b"": Reason.EMPTY,
    b"no key here": Reason.MISSING_KEY,
    b"x1:" + b",".join([b"0"] * 784): Reason.BAD_KEY,
    b"5:" + b",".join([b"0"] * 783): Reason.WRONG_VALUE_COUNT,
    b"6:" + b",".join([b"0"] * 783 + [b"zero"]): Reason.NON_NUMERIC,
    b"7:" + b",".join([b"nan"] + [b"0"] * 783): Reason.NON_FINITE,
    b"8:\xff" + b",".join([b"0"] * 784): Reason.NOT_UTF8,
}


def run_job(tmp_path: Path, input_pattern: str, model: str, *extra: str, remote: bool = False):
    options = PipelineOptions(
        [f"--input={input_pattern}", f"--output={tmp_path / 'out' / 'predictions'}", f"--model={model}", *extra]
    )
    config = validate(options)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config, remote=remote)
    result = pipeline.run()
    result.wait_until_finish()
    return config, read_counts(result)


def write_records(path: Path, images: np.ndarray) -> Path:
    """Lines key:v0,... with the row number as key."""
    lines = [f"{key}:" + ",".join(str(v) for v in image) for key, image in enumerate(images)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mixed_input(tmp_path_factory, sample_lines) -> Path:
    """400 sample images with one bad line of every kind spread among them, gzipped."""
    lines = list(sample_lines[:400])
    for position, bad in enumerate(BAD_LINES):
        lines.insert(position * 50 + 3, bad)
    path = tmp_path_factory.mktemp("input") / "images.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


@pytest.mark.parametrize("remote", [False, True], ids=["local-graph", "remote-graph-with-reshuffles"])
def test_pipeline_matches_direct_model_calls_and_accounts_for_every_record(
    tmp_path, mixed_input, sample_scores, remote
):
    _, counts = run_job(tmp_path, str(mixed_input), str(SAMPLE_MODEL), "--batch_size=64", remote=remote)

    predictions = read_json_lines(tmp_path / "out" / "predictions-*.jsonl")
    dead_letters = read_json_lines(tmp_path / "out" / "predictions_error_records-*.jsonl")
    assert sorted(row["key"] for row in predictions) == list(range(400))
    assert sorted(row["reason"] for row in dead_letters) == sorted(BAD_LINES.values())
    assert counts.records_read == 400 + len(BAD_LINES)
    assert counts.predictions == 400 and counts.dead_letters == len(BAD_LINES)
    assert counts.reconciles
    assert counts.dead_letters_by_reason == {reason: 1 for reason in BAD_LINES.values()}
    assert counts.first_prediction_unix_ms is not None

    direct = sample_scores[:400]
    by_key = {row["key"]: row for row in predictions}
    piped = np.array([[by_key[key][f"pred{c}"] for c in range(10)] for key in range(400)])
    np.testing.assert_allclose(piped, direct, atol=1e-5)
    assert [by_key[key]["prediction"] for key in range(400)] == direct.argmax(axis=1).tolist()
    np.testing.assert_allclose([by_key[key]["confidence"] for key in range(400)], direct.max(axis=1), atol=1e-5)
    assert all(isinstance(row["key"], int) for row in predictions)


@pytest.mark.parametrize("copies", ["per_process", "per_vm"])
def test_only_the_records_the_model_rejects_become_dead_letters_each_with_its_own_error(tmp_path, copies):
    """Also with one model copy per VM, where the scoring and its isolation run behind Beam's proxy and the
    scored batches and dead letters are pickled back."""
    model = failing_saved_model(tmp_path / "failing")
    rng = np.random.default_rng(3)
    images = rng.random((300, WIDTH), dtype=np.float32)
    bad = [0, 17, 18, 151, 299]
    images[bad, 2] = 500.0  # the model refuses any batch holding one of these records
    source = write_records(tmp_path / "in.txt", images)

    _, counts = run_job(tmp_path, str(source), str(model), "--batch_size=64", f"--model_copies={copies}")

    predictions = read_json_lines(tmp_path / "out" / "predictions-*.jsonl")
    dead_letters = read_json_lines(tmp_path / "out" / "predictions_error_records-*.jsonl")
    assert sorted(int(row["payloadString"].split(":")[0]) for row in dead_letters) == bad
    assert {row["reason"] for row in dead_letters} == {Reason.INFERENCE_FAILED}
    assert all(
        row["errorMessage"].startswith("the model failed on this record: InvalidArgumentError") for row in dead_letters
    )
    assert all("value out of range" in row["errorMessage"] for row in dead_letters)
    assert all(row["stacktrace"] and row["origin"] == str(source) for row in dead_letters)
    assert sorted(row["position"] for row in dead_letters) == sorted(f"{source}:{key + 1}" for key in bad)
    assert sorted(row["key"] for row in predictions) == sorted(set(range(300)) - set(bad))
    assert counts.reconciles and counts.records_read == 300
    assert counts.dead_letters_by_reason == {Reason.INFERENCE_FAILED: len(bad)}
    expected = reference_scores(images[[row["key"] for row in predictions]])
    np.testing.assert_allclose([[row[f"pred{c}"] for c in range(3)] for row in predictions], expected, atol=1e-5)


def test_records_the_model_scores_nan_become_dead_letters_not_predictions(tmp_path):
    model = nan_scoring_saved_model(tmp_path / "nan")
    images = np.random.default_rng(4).random((30, WIDTH), dtype=np.float32)
    images[[5, 6, 21], 0] = -1.0  # the model scores these NaN, their batch-mates normally
    source = write_records(tmp_path / "in.txt", images)

    _, counts = run_job(tmp_path, str(source), str(model), "--batch_size=4")

    predictions = read_json_lines(tmp_path / "out" / "predictions-*.jsonl")
    dead_letters = read_json_lines(tmp_path / "out" / "predictions_error_records-*.jsonl")
    assert sorted(int(row["payloadString"].split(":")[0]) for row in dead_letters) == [5, 6, 21]
    assert {row["reason"] for row in dead_letters} == {Reason.NON_FINITE_SCORE}
    assert all("NaN or infinite" in row["errorMessage"] for row in dead_letters)
    assert sorted(row["key"] for row in predictions) == sorted(set(range(30)) - {5, 6, 21})
    assert all(row[f"pred{c}"] is not None for row in predictions for c in range(3))
    assert counts.reconciles and counts.records_read == 30
    assert counts.dead_letters_by_reason == {Reason.NON_FINITE_SCORE: 3}


def test_a_batch_job_on_a_versioned_folder_scores_with_its_highest_version_and_says_so(tmp_path):
    from tests.model_factories import sharpened_saved_model, sharpened_scores

    for version in (1, 2):
        sharpened_saved_model(tmp_path / "versions" / str(version), float(version))
    images = np.random.default_rng(6).random((10, WIDTH), dtype=np.float32)
    source = write_records(tmp_path / "in.txt", images)

    config, counts = run_job(tmp_path, str(source), str(tmp_path / "versions"))

    predictions = sorted(read_json_lines(tmp_path / "out" / "predictions-*.jsonl"), key=lambda row: row["key"])
    assert config.model_version == 2 and counts.predictions == 10
    assert {row["model_version"] for row in predictions} == {2}
    np.testing.assert_allclose(
        [[row[f"pred{c}"] for c in range(3)] for row in predictions], sharpened_scores(images, 2.0), atol=1e-5
    )


def test_a_remote_parquet_job_spreads_row_groups_once_and_accounts_for_every_row(tmp_path):
    """Remote runners reshuffle the files, then the row-group slices; the decoded batches are not spread again."""
    from tests.conftest import SAMPLES

    penguins = SAMPLES / "penguins"
    options = PipelineOptions(
        [f"--input={penguins / 'penguins.parquet'}", f"--output={tmp_path / 'p'}", f"--model={penguins / 'model'}"]
    )
    config = validate(options)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, config, remote=True)
    steps = {transform.unique_name for transform in pipeline.to_runner_api().components.transforms.values()}
    assert {"Read/Spread files", "Read/Spread row groups"} <= steps
    assert not any("Spread batches" in step for step in steps)
    result = pipeline.run()
    result.wait_until_finish()
    counts = read_counts(result)
    assert (counts.records_read, counts.predictions, counts.dead_letters) == (333, 333, 0)


def test_a_remote_job_reads_uncompressed_files_in_ranges_and_spreads_the_batches_of_compressed_ones(
    tmp_path, sample_lines
):
    """One reader step for both kinds: a gzip file's batches (one worker reads it) go through a shuffle to
    the others, an uncompressed file's ranges were spread before they were read; every record scored once."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes(b"\n".join(sample_lines[:30]) + b"\n")
    (tmp_path / "in" / "b.txt.gz").write_bytes(gzip.compress(b"\n".join(sample_lines[30:50]) + b"\n"))
    options = PipelineOptions([f"--input={tmp_path / 'in'}/", f"--output={tmp_path / 'p'}", f"--model={SAMPLE_MODEL}"])
    pipeline = beam.Pipeline(options=options)
    build(pipeline, validate(options), remote=True)
    steps = {transform.unique_name for transform in pipeline.to_runner_api().components.transforms.values()}
    assert {"Read/Spread files", "Read/Split into ranges", "Read/Spread ranges", "Read/Spread batches"} <= steps
    assert not any(step.startswith("Decode/Spread") for step in steps)
    result = pipeline.run()
    result.wait_until_finish()
    assert sorted(row["key"] for row in read_json_lines(tmp_path / "p-*.jsonl")) == list(range(50))
    assert read_counts(result).records_read == 50
