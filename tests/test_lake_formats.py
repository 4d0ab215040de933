"""Parquet and Avro inputs end to end (DirectRunner, text sink): the penguins rows predict as their CSV
does, key for key, from a file, a folder of parts and a pattern; every codec; what does not fit is a dead
letter naming the file's row, or one line at launch; a list column feeds a tensor input; and gs://
folders are read as local ones (GCS emulator)."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from main import run
from scripts.make_lake_samples import AVRO_SCHEMA, SCHEMA, read_rows
from tests.conftest import SAMPLE_MODEL, SAMPLES
from tests.outputs import predictions_and_dead_letters, read_json_lines

pytestmark = pytest.mark.slow

PENGUINS = SAMPLES / "penguins"
MODEL = PENGUINS / "model"


def predict(tmp_path: Path, capfd, *args: str, model: Path = MODEL) -> tuple[list[dict], list[dict], str]:
    """Runs the job; its predictions, dead letters and summary."""
    output = tmp_path / "out" / "p"
    shutil.rmtree(output.parent, ignore_errors=True)
    status = run([*args, f"--model={model}", f"--output={output}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    predictions, dead_letters = predictions_and_dead_letters(output)
    return predictions, dead_letters, captured.out


def launch_error(tmp_path: Path, capfd, *args: str) -> str:
    assert run([*args, f"--model={MODEL}", f"--output={tmp_path / 'o'}"]) == 2
    error = capfd.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error


def by_key(rows: list[dict]) -> dict:
    keyed = {row["key"]: row for row in rows}
    assert len(keyed) == len(rows), "a key predicted twice"
    return keyed


@pytest.fixture(scope="module")
def csv_predictions(tmp_path_factory) -> dict:
    """The penguins CSV's predictions: what every lake file of the same rows must give."""
    output = tmp_path_factory.mktemp("csv") / "p"
    assert run([f"--input={PENGUINS / 'penguins.csv'}", f"--model={MODEL}", f"--output={output}"]) == 0
    return by_key(read_json_lines(f"{output}-*.jsonl"))


def penguins_table(rows: list[dict] | None = None) -> pa.Table:
    return pa.Table.from_pylist(read_rows() if rows is None else rows, schema=SCHEMA)


@pytest.mark.parametrize(
    "source",
    ["penguins.parquet", "parts", "parts/part-*.parquet", "penguins.avro"],
)
def test_parquet_and_avro_predict_what_the_csv_of_the_same_rows_does(tmp_path, capfd, csv_predictions, source):
    predictions, dead_letters, summary = predict(tmp_path, capfd, f"--input={PENGUINS / source}")
    assert by_key(predictions) == csv_predictions
    assert dead_letters == [] and "records read                333" in summary


def test_every_parquet_codec_is_read_and_damaged_parts_are_dead_letters_while_the_others_are_scored(
    tmp_path, capfd, csv_predictions
):
    table = penguins_table()
    folder = tmp_path / "lake"
    folder.mkdir()
    for index, (codec, start, stop) in enumerate((("snappy", 0, 100), ("gzip", 100, 200), ("zstd", 200, 250))):
        pq.write_table(table.slice(start, stop - start), folder / f"part-{index}.{codec}.parquet", compression=codec)
    pq.write_table(table.slice(250), folder / "part-3.parquet", row_group_size=28)  # row groups of 28 rows
    whole = (folder / "part-3.parquet").read_bytes()
    damaged = bytearray(whole)
    offset = pq.ParquetFile(folder / "part-3.parquet").metadata.row_group(1).column(1).data_page_offset
    damaged[offset : offset + 16] = b"\xff" * 16  # row group 1's page of its second column, island
    (folder / "part-3.parquet").write_bytes(bytes(damaged))
    (folder / "part-4.parquet").write_bytes(whole[: len(whole) // 2])  # cut short: its footer is gone
    (folder / "_SUCCESS").write_bytes(b"")
    predictions, dead_letters, summary = predict(tmp_path, capfd, f"--input={folder}")
    lost = {row["key"] for row in table.slice(278, 28).to_pylist()}
    assert by_key(predictions) == {key: row for key, row in csv_predictions.items() if key not in lost}
    letters = {Path(letter["origin"]).name: letter for letter in dead_letters}
    assert {name: letter["reason"] for name, letter in letters.items()} == {
        "part-3.parquet": "corrupt_input",
        "part-4.parquet": "truncated_input",
    }
    assert letters["part-3.parquet"]["errorMessage"].startswith(
        f"{folder}/part-3.parquet: row group 1 (rows 28 to 55) is damaged ("
    )
    assert "WARNING: damaged input" in summary


def test_every_avro_codec_is_read_and_a_truncated_file_keeps_the_blocks_before_the_cut(
    tmp_path, capfd, csv_predictions
):
    rows = read_rows()
    schema = fastavro.parse_schema(AVRO_SCHEMA)
    folder = tmp_path / "avro"
    folder.mkdir()
    for index, codec in enumerate(("null", "deflate", "snappy")):
        with (folder / f"{index}.{codec}.avro").open("wb") as handle:
            fastavro.writer(handle, schema, rows[index * 100 : (index + 1) * 100], codec=codec)
    with (folder / "3.avro").open("wb") as handle:
        fastavro.writer(handle, schema, rows[300:], codec="deflate", sync_interval=200)  # a block per few rows
    whole = (folder / "3.avro").read_bytes()
    (folder / "3.avro").write_bytes(whole[: len(whole) * 2 // 3])
    predictions, dead_letters, _ = predict(tmp_path, capfd, f"--input={folder}/*.avro")
    keys = [row["key"] for row in predictions]
    first_300 = [row["key"] for row in rows[:300]]
    rest = [key for key in keys if key not in first_300]
    assert set(first_300) <= set(keys) and 0 < len(rest) < len(rows) - 300
    assert rest == sorted(rest) and set(rest) == {row["key"] for row in rows[300 : 300 + len(rest)]}
    assert all(row == csv_predictions[row["key"]] for row in predictions)
    ((origin, reason, message),) = [(d["origin"], d["reason"], d["errorMessage"]) for d in dead_letters]
    assert (Path(origin).name, reason) == ("3.avro", "truncated_input")
    assert f"the block from record {len(rest):,} on is damaged" in message


def test_nulls_and_values_of_another_type_are_dead_letters_naming_the_row(tmp_path, capfd, csv_predictions):
    rows = read_rows()[:20]
    folder = tmp_path / "mixed"
    folder.mkdir()
    nulls = [dict(row) for row in rows[:10]]
    nulls[3]["bill_length_mm"], nulls[7]["sex"] = None, None
    pq.write_table(penguins_table(nulls), folder / "a.parquet")
    texts = pa.Table.from_pylist(
        [
            {**row, "body_mass_g": str(row["body_mass_g"]) if index != 2 else "heavy"}
            for index, row in enumerate(rows[10:])
        ]
    )  # a later part that wrote the mass as text: each row judged on its own, none castable here
    pq.write_table(texts, folder / "b.parquet")
    predictions, dead_letters, _ = predict(tmp_path, capfd, f"--input={folder}/", "--included_fields=island")
    assert sorted(row["key"] for row in predictions) == [
        row["key"] for index, row in enumerate(nulls) if index not in (3, 7)
    ]
    islands = {row["key"]: row["island"] for row in rows}
    assert all(row == {**csv_predictions[row["key"]], "island": islands[row["key"]]} for row in predictions)
    missing = [(d["position"], d["errorMessage"]) for d in dead_letters if d["reason"] == "missing_field"]
    assert sorted(missing) == [
        (f"key={nulls[7]['key']}", "field 'sex' is null"),
        (f"key={nulls[3]['key']}", "field 'bill_length_mm' is null"),
    ]
    wrong = {d["position"]: d["errorMessage"] for d in dead_letters if d["reason"] == "wrong_type"}
    assert sorted(wrong) == sorted(f"key={row['key']}" for row in rows[10:]) and len(dead_letters) == 12
    assert wrong[f"key={rows[12]['key']}"] == "field 'body_mass_g': 'heavy' is not finite float32 numbers"


def write_penguins(path: Path, **changes) -> Path:
    table = penguins_table(read_rows()[:5])
    for name, column in changes.items():
        table = (
            table.drop_columns([name])
            if column is None
            else table.set_column(table.schema.get_field_index(name), name, column)
        )
    pq.write_table(table, path)
    return path


def test_a_missing_column_a_key_of_the_wrong_type_a_type_no_input_takes_and_null_first_rows_are_one_line(
    tmp_path, capfd
):
    missing = write_penguins(tmp_path / "missing.parquet", sex=None)
    assert launch_error(tmp_path, capfd, f"--input={missing}") == (
        f"error: --input={missing}: the parquet file lacks the model's input(s) sex; it has species, which the "
        "model does not take"
    )
    floats = write_penguins(tmp_path / "float-key.parquet", key=pa.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert launch_error(tmp_path, capfd, f"--input={floats}").startswith(
        f"error: --input={floats}: the parquet file: key column 'key' is FLOAT; it must be INTEGER or STRING"
    )
    dates = write_penguins(tmp_path / "dates.parquet", body_mass_g=pa.array([datetime.date(2024, 1, 1)] * 5))
    assert launch_error(tmp_path, capfd, f"--input={dates}") == (
        f"error: --input={dates}: the parquet file: column 'body_mass_g' is DATE, which input 'body_mass_g' "
        "(float32 (None,)) cannot take"
    )
    empty = write_penguins(tmp_path / "nulls.parquet", island=pa.array([None] * 5, pa.string()))
    assert launch_error(tmp_path, capfd, f"--input={empty}") == (
        f"error: --input={empty}: the parquet file: the first records do not fit the model: missing_field: "
        "field 'island' is null"
    )


def test_a_list_column_feeds_a_tensor_input(tmp_path, capfd, sample_lines, sample_scores):
    """MNIST images as a fixed-size list<float> column of 784 values, fed to the sample model's (28, 28, 1) input."""
    keys = [int(line.split(b":")[0]) for line in sample_lines[:300]]
    images = np.array([line.split(b":")[1].split(b",") for line in sample_lines[:300]], dtype=np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(images.ravel()), 784)
    path = tmp_path / "images.parquet"
    pq.write_table(pa.table({"key": keys, "image": column}), path, row_group_size=100)
    predictions, dead_letters, _ = predict(tmp_path, capfd, f"--input={path}", model=SAMPLE_MODEL)
    assert dead_letters == [] and sorted(row["key"] for row in predictions) == keys
    scores = np.array(
        [[row[f"pred{index}"] for index in range(10)] for row in sorted(predictions, key=lambda row: row["key"])]
    )
    np.testing.assert_allclose(scores, sample_scores[keys], atol=1e-5)


@pytest.mark.emulators
def test_a_gcs_folder_of_parts_is_read_as_a_local_one(cloud_emulators, tmp_path, capfd, csv_predictions):
    bucket = cloud_emulators.gcs.client().bucket(cloud_emulators.bucket)
    for path in (PENGUINS / "parts").iterdir():
        bucket.blob(f"lake/penguins/{path.name}").upload_from_filename(str(path))
    bucket.blob("lake/penguins/_temporary/0/part-9.parquet").upload_from_string(b"not yet committed")
    output = f"gs://{cloud_emulators.bucket}/lake/out/p"
    args = [f"--input=gs://{cloud_emulators.bucket}/lake/penguins", f"--model={MODEL}", f"--output={output}"]
    assert run([*args, *cloud_emulators.beam_options()]) == 0, capfd.readouterr().err[-3000:]
    assert by_key(read_json_lines(f"{output}-*.jsonl")) == csv_predictions
    assert read_json_lines(f"{output}_error_records-*.jsonl") == []
