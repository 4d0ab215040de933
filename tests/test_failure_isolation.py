"""A bad record costs only itself, end to end: the template run as a user runs it, on real models that
fail inside their own graph (a PNG that does not decode, an assertion on an input), run out of
memory, or fail on everything."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from main import run
from pipeline.job import isolation
from pipeline.model.health import BROKEN_AFTER
from tests.conftest import SAMPLES
from tests.model_factories import (
    WIDTH,
    age_checking_saved_model,
    data_loss_saved_model,
    failing_saved_model,
    out_of_memory_saved_model,
)
from tests.outputs import predictions_and_dead_letters

pytestmark = pytest.mark.slow

PNG = SAMPLES / "png"


def run_job(tmp_path: Path, capfd, *args: str) -> tuple[int, list[dict], list[dict], str, str]:
    """Runs the job; returns its exit status, predictions, dead letters, stdout and stderr."""
    output = tmp_path / "out" / "p"
    status = run([*args, f"--output={output}"])
    captured = capfd.readouterr()
    predictions, dead_letters = predictions_and_dead_letters(output)
    return status, predictions, dead_letters, captured.out, captured.err


def test_three_damaged_pngs_among_64_cost_three_dead_letters(tmp_path, capfd):
    digits = tmp_path / "digits"
    digits.mkdir()
    sources = sorted((PNG / "digits").glob("*.png"))[:64]
    damaged = {sources[5].name: "cut short", sources[30].name: "not a PNG", sources[61].name: "empty"}
    for source in sources:
        data = source.read_bytes()
        kind = damaged.get(source.name)
        if kind == "cut short":
            data = data[: len(data) // 2]
        elif kind == "not a PNG":
            data = b"this is a text file named .png\n"
        elif kind == "empty":
            data = b""
        (digits / source.name).write_bytes(data)

    status, predictions, dead_letters, out, err = run_job(
        tmp_path, capfd, f"--input={digits}/*.png", "--format=files", f"--model={PNG / 'model'}"
    )

    assert status == 0, err[-3000:]
    assert sorted(Path(row["origin"]).name for row in dead_letters) == sorted(damaged)
    assert {row["position"] for row in dead_letters} == {str(digits / name) for name in damaged}
    assert all(row["reason"] == "inference_failed" for row in dead_letters)
    assert all(
        row["errorMessage"].startswith("the model failed on this record: InvalidArgumentError") for row in dead_letters
    )
    assert len(predictions) == 61 and {Path(row["key"]).name for row in predictions} == {
        source.name for source in sources if source.name not in damaged
    }
    labels = dict(line.split(",") for line in (PNG / "labels.csv").read_text().split())
    assert all(row["prediction"] == int(labels[Path(row["key"]).stem]) for row in predictions)
    assert "dead letters                  3" in out and "inference_failed            3" in out


def test_five_negative_ages_among_300_json_records_cost_five_dead_letters(tmp_path, capfd):
    model = age_checking_saved_model(tmp_path / "model")
    rng = random.Random(5)
    negative = set(rng.sample(range(300), 5))
    records = [
        {"key": key, "age": -1.0 - key if key in negative else float(rng.randint(1, 90)), "weight": rng.random()}
        for key in range(300)
    ]
    path = tmp_path / "people.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))

    status, predictions, dead_letters, _, err = run_job(tmp_path, capfd, f"--input={path}", f"--model={model}")

    assert status == 0, err[-3000:]
    assert sorted(json.loads(row["payloadString"])["key"] for row in dead_letters) == sorted(negative)
    assert sorted(row["position"] for row in dead_letters) == sorted(f"{path}:{key + 1}" for key in negative)
    assert all("age must not be negative" in row["errorMessage"] for row in dead_letters)
    assert sorted(row["key"] for row in predictions) == sorted(set(range(300)) - negative)
    by_key = {record["key"]: record for record in records}
    expected = [
        np.float32(0.5) * np.float32(by_key[row["key"]]["age"]) + np.float32(by_key[row["key"]]["weight"])
        for row in predictions
    ]
    np.testing.assert_allclose([row["score"] for row in predictions], expected, rtol=1e-6)


def write_lines(path: Path, images: np.ndarray) -> Path:
    path.write_text("".join(f"{key}:" + ",".join(map(str, image)) + "\n" for key, image in enumerate(images)))
    return path


def test_a_model_broken_for_this_input_stops_the_job_in_one_line(tmp_path, capfd):
    model = failing_saved_model(tmp_path / "model", limit=-1.0)  # refuses every value
    source = write_lines(tmp_path / "in.txt", np.random.default_rng(1).random((400, WIDTH), dtype=np.float32))

    status, predictions, _, _, err = run_job(tmp_path, capfd, f"--input={source}", f"--model={model}")

    assert status == 1 and not predictions
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert lines[0].startswith(
        f"error: the model failed on each of the first {BROKEN_AFTER} records it was given alone"
    )
    assert "InvalidArgumentError: assertion failed: [value out of range]" in lines[0]


def test_a_model_that_fails_on_most_records_after_some_successes_stops_the_job_in_one_line(tmp_path, capfd):
    model = failing_saved_model(tmp_path / "model", limit=0.5)  # refuses any record holding a value >= 0.5
    images = np.random.default_rng(3).random((1500, WIDTH), dtype=np.float32)
    images[:200] *= 0.4  # the first records pass: the model has predicted before it starts failing
    source = write_lines(tmp_path / "in.txt", images)

    status, _, _, _, err = run_job(tmp_path, capfd, f"--input={source}", f"--model={model}")

    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "records alone, more than --max_failure_share=0.5" in lines[0] and "value out of range" in lines[0]


def test_a_runtime_fault_of_the_model_is_no_records_fault_and_stops_a_local_run_in_one_line(
    tmp_path, capfd, monkeypatch
):
    monkeypatch.setattr(isolation, "FAULT_BACKOFF_S", 0.0)
    model = data_loss_saved_model(tmp_path / "model")
    source = write_lines(tmp_path / "in.txt", np.random.default_rng(4).random((50, WIDTH), dtype=np.float32))

    status, predictions, dead_letters, _, err = run_job(tmp_path, capfd, f"--input={source}", f"--model={model}")

    assert status == 1 and not predictions and not dead_letters  # nothing blamed on the records
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "the model's runtime failed 3 times in a row, which is not a record's fault" in lines[0]
    assert "DataLossError" in lines[0]


def test_a_batch_too_large_for_memory_is_retried_smaller_and_the_size_that_fits_is_said_once(tmp_path, capfd):
    # One real ResourceExhaustedError: TensorFlow's CPU allocator waits 10 s before it gives up.
    model = out_of_memory_saved_model(tmp_path / "model", fits=8)
    images = np.random.default_rng(2).random((40, WIDTH), dtype=np.float32)
    source = write_lines(tmp_path / "in.txt", images)

    status, predictions, dead_letters, _, err = run_job(
        tmp_path, capfd, f"--input={source}", f"--model={model}", "--batch_size=16"
    )

    assert status == 0, err[-3000:]
    assert sorted(row["key"] for row in predictions) == list(range(40)) and not dead_letters
    said = [line for line in err.splitlines() if "ran out of memory" in line]
    assert len(said) == 1 and "batches of 16 records ran out of memory; 8 records per model call fit" in said[0]
