"""Parquet output (`--output_format=parquet`), run end to end on the DirectRunner: the same input written as
JSON lines and as Parquet gives the same rows, read back with pyarrow, typed as the BigQuery table's
columns; dead letters stay JSON lines beside them; a rerun in either format replaces the other's shards;
and the docs' command runs as written."""

from __future__ import annotations

import gzip
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from main import run
from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL, SAMPLES
from tests.outputs import read_json_lines
from tests.readme import commands_starting_with

pytestmark = pytest.mark.slow

PENGUINS = SAMPLES / "penguins"
DOUBLES = pa.list_(pa.field("element", pa.float64(), nullable=False))


def read_parquet(prefix: Path) -> pa.Table:
    """Every row of the Parquet shards of `prefix`, as a user reads them."""
    paths = sorted(prefix.parent.glob(f"{prefix.name}-*-of-*.parquet"))
    assert paths, f"no Parquet shard of {prefix}"
    return pa.concat_tables([pq.read_table(path) for path in paths])


def predict(capfd, output: Path, *args: str) -> str:
    """Runs the job to `output`; returns its summary."""
    status = run([*args, f"--output={output}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    return captured.out


def by_key(rows: list[dict]) -> dict:
    keyed = {row["key"]: row for row in rows}
    assert len(keyed) == len(rows)
    return keyed


@pytest.fixture(scope="module")
def mnist_input(tmp_path_factory) -> Path:
    """300 sample images and two lines that are not records (dead letters)."""
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        lines = handle.read().splitlines()[:300]
    lines += [b"900:0.5,0.5", b"901:" + b",".join([b"x"] * 784)]
    path = tmp_path_factory.mktemp("mnist") / "images.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_the_mnist_classifier_written_as_parquet_is_its_json_lines_row_for_row(tmp_path, capfd, mnist_input):
    args = (f"--input={mnist_input}", f"--model={SAMPLE_MODEL}", "--batch_size=64")
    predict(capfd, tmp_path / "jsonl" / "p", *args)
    summary = predict(capfd, tmp_path / "parquet" / "p", *args, "--output_format=parquet")

    table = read_parquet(tmp_path / "parquet" / "p")
    classes = [f"pred{index}" for index in range(10)]
    assert table.schema == pa.schema(
        [pa.field(name, pa.int64(), nullable=False) for name in ("key", "prediction")]
        + [pa.field(name, pa.float64(), nullable=False) for name in ("confidence", *classes)]
    )
    expected = read_json_lines(tmp_path / "jsonl" / "p-*.jsonl")
    assert len(expected) == 300
    assert by_key(table.to_pylist()) == by_key(expected)  # floats equal exactly: the JSON's decimals, as doubles
    assert not list((tmp_path / "parquet").glob("p-*.jsonl"))
    reasons = sorted(row["reason"] for row in read_json_lines(tmp_path / "parquet" / "p_error_records-*.jsonl"))
    assert reasons == ["non_numeric_value", "wrong_value_count"]
    assert f"predictions at       {tmp_path / 'parquet' / 'p'}-*.parquet" in summary
    assert f"dead letters at      {tmp_path / 'parquet' / 'p'}_error_records-*.jsonl" in summary


def test_the_penguins_text_vector_and_included_field_keep_their_types_and_values(tmp_path, capfd):
    args = (f"--input={PENGUINS / 'penguins.jsonl'}", f"--model={PENGUINS / 'model'}", "--included_fields=island")
    predict(capfd, tmp_path / "jsonl" / "p", *args)
    predict(capfd, tmp_path / "parquet" / "p", *args, "--output_format=parquet")

    table = read_parquet(tmp_path / "parquet" / "p")
    assert table.schema == pa.schema(
        [
            pa.field("key", pa.int64(), nullable=False),
            pa.field("probabilities", DOUBLES, nullable=False),
            pa.field("species", pa.string(), nullable=False),
            pa.field("island", pa.string()),
        ]
    )
    expected = read_json_lines(tmp_path / "jsonl" / "p-*.jsonl")
    assert len(expected) == 333
    assert by_key(table.to_pylist()) == by_key(expected)


def canonical(value) -> str:
    """JSON text with numbers by value: a FLOAT column's 5000.0 is the JSON line's 5000 (written as read)."""

    def by_value(item):
        if isinstance(item, dict):
            return {name: by_value(inner) for name, inner in item.items()}
        if isinstance(item, list):
            return [by_value(inner) for inner in item]
        return int(item) if isinstance(item, float) and item.is_integer() else item

    return json.dumps(by_value(value), sort_keys=True)


def test_vertex_ais_shape_is_its_tables_columns_with_the_prediction_as_json_text(tmp_path, capfd):
    """Each JSON line's instance (or key) is the Parquet row's other columns, and its prediction the row's JSON."""
    args = (f"--input={PENGUINS / 'penguins.jsonl'}", f"--model={PENGUINS / 'model'}", "--output_shape=vertex")
    predict(capfd, tmp_path / "jsonl" / "p", *args)
    predict(capfd, tmp_path / "parquet" / "p", *args, "--output_format=parquet")

    table = read_parquet(tmp_path / "parquet" / "p")
    assert table.schema.names[-1] == "prediction" and table.schema.field("prediction").type == pa.string()
    rows = sorted(
        (canonical({name: value for name, value in row.items() if name != "prediction"}), row["prediction"])
        for row in table.to_pylist()
    )  # by instance: identical instances have identical predictions
    lines = read_json_lines(tmp_path / "jsonl" / "p-*.jsonl")
    expected = sorted(
        (
            (
                canonical(line.get("instance", {name: value for name, value in line.items() if name != "prediction"})),
                line,
            )
            for line in lines
        ),
        key=lambda pair: pair[0],
    )
    assert len(expected) == len(rows) == 333
    assert [instance for instance, _ in rows] == [instance for instance, _ in expected]
    assert [json.loads(prediction) for _, prediction in rows] == [line["prediction"] for _, line in expected]


def shard_names(output) -> set[str]:
    """The files beside a prefix, the run's statistics and report (`<prefix>-stats.json`, `-report.html`) aside."""
    return {
        path.name
        for path in output.parent.iterdir()
        if path.name not in (f"{output.name}-stats.json", f"{output.name}-report.html")
    }


def test_a_parquet_rerun_replaces_an_earlier_json_lines_output_and_the_other_way_round(tmp_path, capfd, mnist_input):
    output = tmp_path / "out" / "p"
    args = (f"--input={mnist_input}", f"--model={SAMPLE_MODEL}", "--batch_size=64")
    predict(capfd, output, *args)
    (output.parent / "p-2024-00000-of-00001.jsonl").write_text("a longer prefix's\n")
    shards = {"p-00000-of-00001.jsonl", "p_error_records-00000-of-00001.jsonl", "p-2024-00000-of-00001.jsonl"}
    assert shard_names(output) == shards

    summary = predict(capfd, output, *args, "--output_format=parquet")
    assert "earlier output       1 earlier shard(s) removed" in summary
    assert shard_names(output) == {
        "p-00000-of-00001.parquet",
        "p_error_records-00000-of-00001.jsonl",
        "p-2024-00000-of-00001.jsonl",
    }
    assert read_parquet(output).num_rows == 300
    assert len(read_json_lines(output.parent / "p_error_records-*.jsonl")) == 2

    predict(capfd, output, *args)
    assert shard_names(output) == shards


def test_parquet_for_a_table_output_is_one_line_at_launch(tmp_path, capfd, mnist_input):
    args = [f"--input={mnist_input}", f"--model={SAMPLE_MODEL}", "--sink=bigquery", "--output=mnist.predict"]
    assert run([*args, "--output_format=parquet"]) == 2
    error = capfd.readouterr().err.strip()
    assert error == (
        "error: --output_format=parquet: applies only to file outputs (sink=text), not to a bigquery output"
    )


DOC_COMMANDS = commands_starting_with(".venv/bin/python template/main.py", containing="--output_format=parquet")


def test_the_docs_parquet_command_runs_as_written():
    """Its predictions, read with pyarrow, are the penguins' species with their islands."""
    assert len(DOC_COMMANDS) == 1, DOC_COMMANDS
    argv = shlex.split(DOC_COMMANDS[0])
    output = ROOT / re.search(r"--output[= ](\S+)", DOC_COMMANDS[0]).group(1)
    for stale in output.parent.glob(f"{output.name}*"):
        stale.unlink()
    result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^\s+dead letters\s+0$", result.stdout, re.M), result.stdout
    rows = read_parquet(output).to_pylist()
    with open(PENGUINS / "penguins.jsonl") as handle:
        records = {record["key"]: record for record in map(json.loads, handle)}
    assert sorted(row["key"] for row in rows) == sorted(records)
    assert all(row["island"] == records[row["key"]]["island"] for row in rows)
    correct = sum(row["species"] == records[row["key"]]["species"] for row in rows)
    assert correct >= 0.95 * len(rows)
