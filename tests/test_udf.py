"""Python UDFs end to end on the DirectRunner: the docs' sample as written; a UDF deriving the field a model
needs from CSV and Parquet rows; one that raises, drops and splits records, with one after the model; a UDF
read from gs:// writing a BigQuery table whose columns its rows must fit; and the launch errors, one line each."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from main import run
from tests.conftest import ROOT, SAMPLES
from tests.outputs import predictions_and_dead_letters, read_json_lines
from tests.readme import commands_starting_with
from tests.test_samples import penguin_rows, predict_penguins

pytestmark = pytest.mark.slow

PENGUINS = SAMPLES / "penguins"
MODEL = PENGUINS / "model"
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
(DOCS_COMMAND,) = commands_starting_with(".venv/bin/python template/main.py", containing="--python_udf_gcs_path")
UDF = """\
def grams(record):
    record["body_mass_g"] = record.pop("body_mass_kg") * 1000
    return record


def prepare(record):
    key = record["key"]
    if key % 10 == 1:
        return record["nothing_here"]
    if key % 10 == 2:
        return None
    if key % 10 == 3:
        return [dict(record, key=key * 1000), dict(record, key=key * 1000 + 1, island="Biscoe")]
    return record


def finish(row):
    if row["key"] % 10 == 4:
        raise ValueError(f"no label for {row['key']}")
    row["label"] = row.pop("species").lower()
    return row


def extend(row):
    if row["key"] % 2:
        row["note"] = "not a column"
    return row


def first_fails(record):
    return {"island": record["island"].lower()}
"""


@pytest.fixture(scope="module")
def udf_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("udf") / "penguins_udf.py"
    path.write_text(UDF)
    return path


@pytest.fixture(scope="module")
def expected() -> dict[int, np.ndarray]:
    """The penguins model called directly on every sample row: key -> probabilities."""
    rows = penguin_rows()
    return dict(zip((row["key"] for row in rows), predict_penguins(MODEL, rows)["probabilities"], strict=True))


def job(tmp_path: Path, capfd, *args: str) -> tuple[list[dict], list[dict], str]:
    output = tmp_path / "out" / "p"
    status = run([*args, f"--model={MODEL}", f"--output={output}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    predictions, dead_letters = predictions_and_dead_letters(output)
    return predictions, dead_letters, captured.out


def launch_error(capfd, *args: str) -> str:
    assert run(list(args)) == 2
    error = capfd.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def test_the_docs_sample_runs_as_written_and_names_every_digit_right():
    result = subprocess.run(
        [sys.executable, *shlex.split(DOCS_COMMAND)[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^\s+dead letters\s+0$", result.stdout, re.M), result.stdout
    output = shlex.split(DOCS_COMMAND)[shlex.split(DOCS_COMMAND).index("--output") + 1]
    rows = read_json_lines(ROOT / f"{output}-*.jsonl")
    with (SAMPLES / "png" / "labels.csv").open() as handle:
        labels = {int(key): int(label) for key, label in csv.reader(handle)}
    assert {row["key"]: row["prediction"] for row in rows} == labels
    names = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert all(set(row) == {"key", "prediction", "digit", "confidence"} for row in rows)
    assert all(row["digit"] == names[row["prediction"]] and 0.1 <= row["confidence"] <= 1 for row in rows)


def test_the_sample_lists_every_png_of_the_png_sample_by_key():
    lines = [json.loads(line) for line in (SAMPLES / "udf" / "digits.jsonl").read_text().splitlines()]
    assert lines == [{"key": key, "path": f"samples/png/digits/{key}.png"} for key in range(8000, 8200)]
    assert all((ROOT / line["path"]).is_file() for line in lines)


def kilograms(rows: list[dict]) -> list[dict]:
    """The penguins rows with body_mass_kg where the model takes body_mass_g."""
    return [
        {name: value for name, value in row.items() if name != "body_mass_g"}
        | {"body_mass_kg": row["body_mass_g"] / 1000}
        for row in rows
    ]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_udf_derives_the_field_the_model_needs(tmp_path, capfd, udf_file, expected, suffix):
    path = tmp_path / f"kilograms.{suffix}"
    rows = kilograms(penguin_rows())
    if suffix == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=100)
    refused = launch_error(capfd, f"--input={path}", f"--model={MODEL}", f"--output={tmp_path / 'o'}")
    assert "lacks the model's input(s) body_mass_g" in refused and "body_mass_kg" in refused
    udf = [f"--python_udf_gcs_path={udf_file}", "--python_udf_function_name=grams"]
    predictions, dead_letters, summary = job(tmp_path, capfd, f"--input={path}", *udf)
    assert dead_letters == [] and len(predictions) == len(expected)
    for row in predictions:
        np.testing.assert_allclose(row["probabilities"], expected[row["key"]], atol=1e-5)
    assert "dropped by the UDF" not in summary and "WARNING" not in summary


def test_raises_drops_and_splits_before_the_model_and_a_udf_after_it(tmp_path, capfd, udf_file, expected):
    udf = [
        f"--python_udf_gcs_path={udf_file}",
        "--python_udf_function_name=prepare",
        "--python_udf_output_function_name=finish",
    ]
    predictions, dead_letters, summary = job(
        tmp_path, capfd, f"--input={PENGUINS / 'penguins.jsonl'}", "--batch_size=32", *udf
    )
    keys = sorted(expected)
    by_digit = {digit: [key for key in keys if key % 10 == digit] for digit in range(10)}
    split = [key * 1000 + part for key in by_digit[3] for part in (0, 1)]
    kept = [key for key in keys if key % 10 not in (1, 2, 3, 4)]
    assert sorted(row["key"] for row in predictions) == sorted(kept + split)
    by_key = {row["key"]: row for row in predictions}
    for key in kept:
        assert by_key[key]["label"] == SPECIES[int(np.argmax(expected[key]))].lower()
        np.testing.assert_allclose(by_key[key]["probabilities"], expected[key], atol=1e-5)
    np.testing.assert_allclose(by_key[by_digit[3][0] * 1000]["probabilities"], expected[by_digit[3][0]], atol=1e-5)

    lines = UDF.splitlines()
    before_line = lines.index('        return record["nothing_here"]') + 1
    after_line = lines.index("        raise ValueError(f\"no label for {row['key']}\")") + 1
    raised = {json.loads(letter["payloadString"])["key"]: letter for letter in dead_letters}
    assert sorted(raised) == sorted(by_digit[1] + by_digit[4])
    assert {letter["reason"] for letter in dead_letters} == {"udf_error"}
    first = raised[by_digit[1][0]]
    assert first["errorMessage"] == f"{udf_file}:{before_line} in prepare: KeyError: 'nothing_here'"
    assert first["position"] == f"{PENGUINS / 'penguins.jsonl'}:{keys.index(by_digit[1][0]) + 1}"
    assert 'return record["nothing_here"]' in first["stacktrace"]
    fourth = raised[by_digit[4][0]]
    assert fourth["errorMessage"] == f"{udf_file}:{after_line} in finish: ValueError: no label for {by_digit[4][0]}"
    assert re.search(rf"^\s+dropped by the UDF\s+{len(by_digit[2])}$", summary, re.M), summary
    assert re.search(rf"^\s+added by the UDF\s+{len(by_digit[3])} ", summary, re.M), summary
    assert "WARNING" not in summary


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--python_udf_gcs_path={absent}", "--python_udf_function_name=grams"], "{absent}: no such file"),
        (["--python_udf_gcs_path={broken}", "--python_udf_function_name=grams"], "{broken}:2: SyntaxError: "),
        (
            ["--python_udf_gcs_path={udf}", "--python_udf_function_name=gram"],
            "--python_udf_function_name=gram: {udf} has no function 'gram'; it defines extend, finish, first_fails, "
            "grams, prepare",
        ),
        (
            ["--python_udf_gcs_path={udf}", "--python_udf_function_name=first_fails"],
            "--python_udf_function_name=first_fails: on the record at {input}:1: {udf}:{line} in first_fails: "
            "AttributeError: 'NoneType' object has no attribute 'lower'",
        ),
        (["--python_udf_function_name=grams"], "give the file with --python_udf_gcs_path"),
    ],
    ids=["missing-file", "syntax-error", "missing-function", "raises-on-the-first-record", "no-file"],
)
def test_launch_errors_are_one_line(tmp_path, capfd, udf_file, args, message):
    broken = tmp_path / "broken.py"
    broken.write_text("def grams(record):\n    return record[\n")
    records = tmp_path / "in.jsonl"
    records.write_text(json.dumps({"key": 1, "island": None}) + "\n")
    line = UDF.splitlines().index('    return {"island": record["island"].lower()}') + 1
    names = {"absent": tmp_path / "absent.py", "broken": broken, "udf": udf_file, "input": records, "line": line}
    given = [arg.format(**names) for arg in args]
    error = launch_error(capfd, f"--input={records}", f"--model={MODEL}", f"--output={tmp_path / 'o'}", *given)
    assert message.format(**names) in error


@pytest.mark.emulators
def test_a_udf_on_gcs_and_a_table_output_whose_columns_its_rows_must_fit(cloud_emulators, tmp_path, capfd, expected):
    from google.cloud import bigquery

    bucket = cloud_emulators.gcs.client().bucket(cloud_emulators.bucket)
    bucket.blob("udf/penguins_udf.py").upload_from_string(UDF)
    path = tmp_path / "kilograms.jsonl"
    rows = penguin_rows()[:40]
    path.write_text("".join(json.dumps({**row, "body_mass_kg": row.pop("body_mass_g") / 1000}) + "\n" for row in rows))
    client = bigquery.Client()
    client.create_dataset("udf", exists_ok=True)
    args = [
        f"--input={path}",
        f"--model={MODEL}",
        "--sink=bigquery",
        "--output=udf.predict",
        f"--python_udf_gcs_path=gs://{cloud_emulators.bucket}/udf/penguins_udf.py",
        "--python_udf_function_name=grams",
        "--python_udf_output_function_name=extend",
        *cloud_emulators.beam_options(),
    ]
    assert run(args) == 0, capfd.readouterr().err[-3000:]
    written = {row["key"]: row for row in client.query("SELECT * FROM udf.predict").result()}
    keys = [row["key"] for row in rows]
    assert sorted(written) == [key for key in keys if key % 2 == 0]
    for key, row in written.items():
        np.testing.assert_allclose(row["probabilities"], expected[key], atol=1e-5)
    errors = list(client.query("SELECT * FROM udf.predict_error_records").result())
    assert sorted(json.loads(error["payloadString"])["key"] for error in errors) == [k for k in keys if k % 2]
    assert {error["reason"] for error in errors} == {"udf_error"}
    assert (
        "extend() returned a row that does not fit the output: the output has no column note"
        in (errors[0]["errorMessage"])
    )
