"""Every record format, fed to real models by input name, with the dead letters of what does not fit
(text sink; the BigQuery sink of each format is in tests/test_cloud_io.py).

Models: one with named inputs of several dtypes and a None dimension, three outputs and a
regression output; one that parses serialized tf.train.Examples; the samples' penguins (CSV,
JSON Lines) and PNG (whole files) models.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from main import run
from tests.conftest import ROOT, SAMPLES
from tests.model_factories import (
    multi_input_reference,
    serialized_example,
)
from tests.outputs import predictions_and_dead_letters
from tests.readme import commands_starting_with

pytestmark = pytest.mark.slow

PENGUINS = SAMPLES / "penguins"
PNG = SAMPLES / "png"


@pytest.fixture(scope="module")
def multi_input_model(format_models) -> Path:
    return format_models["multi"]


@pytest.fixture(scope="module")
def example_model(format_models) -> Path:
    return format_models["examples"]


def predict(tmp_path: Path, capfd, *args: str) -> tuple[list[dict], list[dict], str]:
    """Runs the job; returns predictions, dead letters and the summary."""
    output = tmp_path / "out" / "p"
    status = run([*args, f"--output={output}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]

    predictions, dead_letters = predictions_and_dead_letters(output)
    return predictions, dead_letters, captured.out


def launch_error(capfd, *args: str) -> str:
    assert run(list(args)) == 2
    error = capfd.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def instance(key, length: int, **changes) -> dict:
    record = {"key": key, "features": [1.0, 2.0, 0.5], "count": 2, "tag": f"t{key}", "sequence": [0.25] * length}
    record.update(changes)
    return record


def test_jsonl_objects_feed_inputs_by_name_any_length_where_the_signature_says_none(tmp_path, capfd, multi_input_model):
    good = [instance(key, length=1 + key % 3, extra="ignored") for key in range(12)]
    bad = {
        "not json {": "not_json",
        json.dumps(instance(100, 2, count="two")): "wrong_type",
        json.dumps(instance(101, 2, features=[1.0, 2.0])): "wrong_shape",
        json.dumps({k: v for k, v in instance(102, 2).items() if k != "tag"}): "missing_field",
        json.dumps(instance("103", 2)): "bad_key",
        json.dumps(instance(104, 2, count=2.5)): "wrong_type",
        "": "empty_record",
    }
    lines = [json.dumps(record) for record in good] + list(bad)
    path = tmp_path / "in.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    predictions, dead_letters, summary = predict(
        tmp_path, capfd, f"--input={path}", f"--model={multi_input_model}", "--batch_size=5"
    )
    by_key = {row["key"]: row for row in predictions}
    assert sorted(by_key) == list(range(12))
    for record in good:
        row = by_key[record["key"]]
        expected = multi_input_reference(record["features"], record["count"], record["tag"], record["sequence"])
        assert row["label"] == expected["label"] and row["stats"] == pytest.approx(expected["stats"])
        assert row["score"] == pytest.approx(expected["score"], rel=1e-6)
        assert set(row) == {"key", "score", "label", "stats"}
    assert sorted(letter["reason"] for letter in dead_letters) == sorted(bad.values())
    assert {letter["origin"] for letter in dead_letters} == {str(path)}
    wrong_type = [letter for letter in dead_letters if letter["reason"] == "wrong_type"]
    assert all("field 'count'" in letter["errorMessage"] for letter in wrong_type)
    assert "records read                 19" in summary


def test_jsonl_without_keys_is_keyed_by_file_and_line(tmp_path, capfd, multi_input_model):
    path = tmp_path / "unkeyed.jsonl"
    records = [{k: v for k, v in instance(key, 2).items() if k != "key"} for key in range(3)]
    path.write_text("\n".join(json.dumps(record) for record in records) + "\n")
    predictions, _, _ = predict(tmp_path, capfd, f"--input={path}", f"--model={multi_input_model}")
    assert sorted(row["key"] for row in predictions) == [f"{path}:{line}" for line in (1, 2, 3)]


def test_a_json_array_is_the_whole_input_of_a_single_input_model(tmp_path, capfd, tiny_models):
    from tests.model_factories import WIDTH, reference_scores

    rows = np.random.default_rng(9).random((4, WIDTH), dtype=np.float32)
    path = tmp_path / "arrays.json"
    path.write_text("\n".join(json.dumps(row.tolist()) for row in rows) + "\n")
    predictions, _, _ = predict(tmp_path, capfd, f"--input={path}", f"--model={tiny_models['saved_model_flat']}")
    predictions.sort(key=lambda row: int(row["key"].rsplit(":", 1)[1]))
    scores = np.array([[row[f"pred{c}"] for c in range(3)] for row in predictions])
    np.testing.assert_allclose(scores, reference_scores(rows), atol=1e-6)


def test_csv_columns_feed_inputs_by_name_with_vertex_ais_quoting_rule(tmp_path, capfd):
    with open(PENGUINS / "penguins.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:20]
    path = tmp_path / "penguins.csv"
    lines = ["key,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,species"]
    for row in rows:
        lines.append(
            f'{row["key"]},"{row["island"]}",{row["bill_length_mm"]},{row["bill_depth_mm"]},'
            f'{row["flipper_length_mm"]},{row["body_mass_g"]},{row["sex"]},"{row["species"]}"'
        )  # island quoted, sex not: a text input takes both
    lines.append('900,"Biscoe","45.1",14.5,215,5000,female,"Gentoo"')  # a quoted number is text
    lines.append("901,Biscoe,45.1,14.5,215")  # too few values
    lines.append('902,"Biscoe,45.1,14.5,215,5000,female,Gentoo')  # a quote never closed
    path.write_text("\n".join(lines) + "\n")
    predictions, dead_letters, _ = predict(
        tmp_path, capfd, f"--input={path}", f"--model={PENGUINS / 'model'}", "--included_fields=island"
    )
    assert sorted(row["key"] for row in predictions) == sorted(int(row["key"]) for row in rows)
    assert [row["species"] for row in predictions] == [row["species"] for row in rows]  # the model is right here
    assert all(
        row["island"] in ("Torgersen", "Biscoe", "Dream") and len(row["probabilities"]) == 3 for row in predictions
    )
    assert sorted((letter["reason"], json.loads(letter["payloadString"].split(",")[0])) for letter in dead_letters) == [
        ("bad_csv", 901),
        ("bad_csv", 902),
        ("wrong_type", 900),
    ]


def test_csv_whose_header_lacks_an_input_is_refused_at_launch_naming_missing_and_unknown(tmp_path, capfd):
    path = tmp_path / "short.csv"
    path.write_text('key,island,bill_length_mm,wingspan\n1,"Dream",40.1,3\n')
    error = launch_error(capfd, f"--input={path}", f"--model={PENGUINS / 'model'}", f"--output={tmp_path / 'o'}")
    assert error.startswith(f"error: --input={path}: the header lacks the model's input(s) bill_depth_mm, body_mass_g,")
    assert "it has wingspan, which the model does not take" in error


def test_an_included_field_the_csv_header_lacks_is_refused_at_launch(tmp_path, capfd):
    sample = PENGUINS / "penguins.csv"
    output = f"--output={tmp_path / 'o'}"
    error = launch_error(
        capfd, f"--input={sample}", f"--model={PENGUINS / 'model'}", output, "--included_fields=colony"
    )
    assert error == f"error: --included_fields: the header of {sample} has no column colony"


def test_tfrecord_examples_go_to_the_model_as_bytes_keyed_by_their_feature(tmp_path, capfd, example_model):
    import tensorflow as tf

    plain, zipped = tmp_path / "a.tfrecord", tmp_path / "b.tfrecord.gz"
    with tf.io.TFRecordWriter(str(plain)) as writer:
        for key in range(5):
            writer.write(serialized_example([key, 0.5], id=key))
    with tf.io.TFRecordWriter(str(zipped), options="GZIP") as writer:
        for key in range(5, 8):
            writer.write(serialized_example([key, 0.25], id=key))
        writer.write(serialized_example([1.0, 2.0], id=b"not-an-int"))
    predictions, dead_letters, _ = predict(
        tmp_path, capfd, f"--input={tmp_path}/*.tfrecord*", f"--model={example_model}", "--key_field=id"
    )
    assert {row["id"]: row["total"] for row in predictions} == {
        key: pytest.approx(key + (0.5 if key < 5 else 0.25)) for key in range(8)
    }
    assert [letter["reason"] for letter in dead_letters] == ["bad_key"]


def test_a_truncated_tfrecord_file_ends_in_one_dead_letter(tmp_path, capfd, example_model):
    import tensorflow as tf

    path = tmp_path / "cut.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for key in range(4):
            writer.write(serialized_example([key, 1.0]))
    path.write_bytes(path.read_bytes()[:-10])
    predictions, dead_letters, summary = predict(tmp_path, capfd, f"--input={path}", f"--model={example_model}")
    assert sorted(row["key"] for row in predictions) == [f"{path}:{index}" for index in range(3)]
    assert [letter["reason"] for letter in dead_letters] == ["truncated_input"]
    assert "WARNING: damaged input (truncated_input)" in summary


def test_whole_files_are_one_instance_each_keyed_by_their_path(tmp_path, capfd):
    labels = dict(line.split(",") for line in (PNG / "labels.csv").read_text().split())
    predictions, _, _ = predict(tmp_path, capfd, f"--input={PNG}/digits/80[0-4]?.png", f"--model={PNG / 'model'}")
    assert len(predictions) == 50
    assert all(row["key"].startswith(str(PNG / "digits")) for row in predictions)
    correct = sum(str(row["prediction"]) == labels[Path(row["key"]).stem] for row in predictions)
    assert correct >= 49


@pytest.mark.parametrize(
    ("name", "model", "expected"),
    [
        ("digits.png", PNG / "model", None),
        ("in.txt", PNG / "model", "key:v0,v1,... records feed a float input of fully known shape"),
        ("in.jsonl", PNG / "model", None),
    ],
)
def test_format_is_detected_from_the_name_and_a_model_that_cannot_take_it_is_one_line(
    tmp_path, capfd, name, model, expected
):
    path = tmp_path / name
    if name.endswith(".png"):
        path.write_bytes((PNG / "digits" / "8000.png").read_bytes())
    elif name.endswith(".txt"):
        path.write_text("1:" + ",".join(["0"] * 784) + "\n")
    else:
        path.write_text(json.dumps({"key": 1, "image_bytes": {"b64": ""}}) + "\n")
    args = [f"--input={path}", f"--model={model}", f"--output={tmp_path / 'o'}"]
    if expected is None:
        assert run(args) == 0, capfd.readouterr().err
        return
    assert expected in launch_error(capfd, *args)


def test_a_png_file_fed_to_a_float_input_is_refused_rather_than_scaled_by_a_guess(tmp_path, capfd):
    path = tmp_path / "digit.png"
    path.write_bytes((PNG / "digits" / "8000.png").read_bytes())
    error = launch_error(capfd, f"--input={path}", f"--model={SAMPLES / 'model'}", f"--output={tmp_path / 'o'}")
    assert "each file's bytes feeds one tf.string input" in error and "decode inside the model" in error


SAMPLE_COMMANDS = commands_starting_with(".venv/bin/python template/main.py --input samples/")
SAMPLE_COMMANDS += commands_starting_with(".venv/bin/python template/main.py --input 'samples/")


def test_the_docs_sample_commands_run_as_written():
    """Each sample's one command, read from the docs (written to build/, as a user's would be)."""
    assert len(SAMPLE_COMMANDS) >= 3, SAMPLE_COMMANDS
    for command in SAMPLE_COMMANDS:
        argv = shlex.split(command)
        result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
        assert re.search(r"^\s+dead letters\s+0$", result.stdout, re.M), result.stdout
