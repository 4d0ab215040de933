"""Parquet output: the Arrow schema of the BigQuery table's columns, the files Beam writes, their row groups,
and the rows Arrow cannot hold as dead letters."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.instances import KEY_POSITION, KEY_STR
from pipeline.data.rows import VERTEX, RowLayout
from pipeline.job.metrics import read_counts
from pipeline.job.parquet_sink import WritePredictionsParquet, arrow_schema
from pipeline.model.signatures import TensorSpec
from tests.outputs import read_json_lines

NOT_NULL_FLOATS = pa.list_(pa.field("element", pa.float64(), nullable=False))

MIXED = RowLayout(
    (
        TensorSpec("score", "float32", ()),
        TensorSpec("counts", "int32", (3,)),
        TensorSpec("label", "string", ()),
        TensorSpec("thumb_bytes", "string", ()),
        TensorSpec("masks_bytes", "string", (2,)),
        TensorSpec("grid", "float32", (2, 2)),
        TensorSpec("flag", "bool", ()),
    ),
    key_field="id",
    key_kind=KEY_STR,
    included=(("island", "STRING"), ("raw", "BYTES"), ("year", "INTEGER")),
    versioned=True,
)
SCHEMA = arrow_schema(MIXED.schema())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def row(index: int, **changes) -> dict:
    """A row as FormatRows makes it for a table: BYTES as base64, a matrix as JSON text."""
    values = {
        "id": f"k{index}",
        "score": index / 4,
        "counts": [index, index + 1, 2],
        "label": f"l{index}",
        "thumb_bytes": b64(bytes([index % 256, 0xFF])),
        "masks_bytes": [b64(b"\x00"), b64(bytes([index % 256]))],
        "grid": "[[1.0,2.0],[3.0,4.0]]",
        "flag": index % 2 == 0,
        "model_version": 3,
        "island": None if index % 3 else "Dream",
        "raw": b64(b"\x01\x02") if index % 2 else None,
        "year": 2007 + index % 3,
    }
    values.update(changes)
    return values


def raw(values: dict) -> dict:
    """What a Parquet reader gives back for a row: the bytes themselves where the row carries base64."""
    decoded = dict(values)
    for name in ("thumb_bytes", "raw"):
        decoded[name] = base64.b64decode(values[name]) if values[name] is not None else None
    decoded["masks_bytes"] = [base64.b64decode(item) for item in values["masks_bytes"]]
    return decoded


def write(folder: Path, rows: list[dict], **options):
    """Writes `rows` to `folder`/out/p; returns the refused rows' dead letters (as rows) and the counters."""
    pipeline = beam.Pipeline()
    written = (
        pipeline
        | beam.Create(rows, reshuffle=False)
        | WritePredictionsParquet(str(folder / "out" / "p"), MIXED.schema(), origin="gs://b/out/p", **options)
    )
    refused = folder / "refused.jsonl"
    _ = written.refused | beam.Map(DeadLetter.to_json_line) | beam.io.WriteToText(str(refused), shard_name_template="")
    result = pipeline.run()
    result.wait_until_finish()
    return read_json_lines(refused), read_counts(result)


def test_the_schema_is_the_bigquery_tables_in_arrow_types_and_modes():
    assert arrow_schema(MIXED.schema()) == pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("score", pa.float64(), nullable=False),
            pa.field("counts", pa.list_(pa.field("element", pa.int64(), nullable=False)), nullable=False),
            pa.field("label", pa.string(), nullable=False),
            pa.field("thumb_bytes", pa.binary(), nullable=False),
            pa.field("masks_bytes", pa.list_(pa.field("element", pa.binary(), nullable=False)), nullable=False),
            pa.field("grid", pa.string(), nullable=False),  # JSON text of a matrix, as in BigQuery
            pa.field("flag", pa.bool_(), nullable=False),
            pa.field("model_version", pa.int64()),
            pa.field("island", pa.string()),
            pa.field("raw", pa.binary()),
            pa.field("year", pa.int64()),
        ]
    )


def test_the_classifier_and_vertex_shapes_keep_their_table_columns():
    classifier = arrow_schema(RowLayout((TensorSpec("scores", "float32", (3,)),)).schema())
    assert classifier.names == ["key", "prediction", "confidence", "pred0", "pred1", "pred2"]
    assert [field.type for field in classifier] == [pa.int64(), pa.int64()] + [pa.float64()] * 4
    assert not any(field.nullable for field in classifier)
    vertex = RowLayout(
        (TensorSpec("scores", "float32", (3,)),),
        key_kind=KEY_POSITION,  # no key field: Vertex AI's table holds the instance's columns
        shape=VERTEX,
        inputs=(TensorSpec("features", "float32", (4,)), TensorSpec("tag", "string", ())),
    )
    schema = arrow_schema(vertex.schema())
    assert schema.names == [field["name"] for field in vertex.schema()["fields"]]
    assert {"features", "tag", "prediction"} <= set(schema.names)
    assert schema.field("features").type == NOT_NULL_FLOATS
    assert schema.field("tag").type == pa.string()
    assert schema.field("prediction").type == pa.string()  # JSON text, as Vertex AI's table holds it


def test_a_bigquery_type_without_a_parquet_one_is_a_programming_error():
    with pytest.raises(ValueError, match="column when: no Parquet type for BigQuery type GEOGRAPHY"):
        arrow_schema({"fields": [{"name": "when", "type": "GEOGRAPHY", "mode": "NULLABLE"}]})


def test_rows_are_written_as_one_snappy_file_of_the_schema_with_the_raw_bytes(tmp_path):
    rows = [row(index) for index in range(7)]
    refused, counts = write(tmp_path, rows)
    assert refused == [] and counts.predictions == 0  # nothing taken back
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["p-00000-of-00001.parquet"]
    parquet = pq.ParquetFile(tmp_path / "out" / "p-00000-of-00001.parquet")
    assert parquet.schema_arrow == SCHEMA
    assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
    assert parquet.read().to_pylist() == [raw(values) for values in rows]


def test_a_job_without_a_row_writes_one_empty_file_of_the_schema(tmp_path):
    """As a JSON Lines output writes an empty shard: the last step then replaces the earlier run's shards."""
    write(tmp_path, [])
    table = pq.read_table(tmp_path / "out" / "p-00000-of-00001.parquet")
    assert (table.schema, table.num_rows) == (SCHEMA, 0)


def test_a_bundles_rows_make_row_groups_of_the_size_asked_not_one_per_batch(tmp_path):
    rows = [row(index) for index in range(95)]
    write(tmp_path / "one", rows, rows_per_batch=10)
    one = pq.ParquetFile(tmp_path / "one" / "out" / "p-00000-of-00001.parquet")
    assert (one.metadata.num_row_groups, one.metadata.num_rows) == (1, 95)
    write(tmp_path / "several", rows, rows_per_batch=10, row_group_bytes=1)
    several = pq.ParquetFile(tmp_path / "several" / "out" / "p-00000-of-00001.parquet")
    assert [several.metadata.row_group(i).num_rows for i in range(several.metadata.num_row_groups)] == [10] * 9 + [5]
    assert several.read().to_pylist() == [raw(values) for values in rows]


def test_a_row_arrow_cannot_hold_is_a_dead_letter_holding_the_row_and_the_others_are_written(tmp_path):
    too_big = row(1, year=2**63)
    null_required = row(2, label=None)
    null_in_list = row(3, counts=[1, None, 2])
    not_base64 = row(5, thumb_bytes="not base64!")  # what a UDF after the model might leave
    rows = [row(0), too_big, null_required, null_in_list, row(4), not_base64]
    refused, counts = write(tmp_path, rows, rows_per_batch=3)
    assert pq.read_table(tmp_path / "out" / "p-00000-of-00001.parquet").to_pylist() == [raw(row(0)), raw(row(4))]
    assert counts.predictions == -4  # counted when formatted, taken back: records_read = predictions + dead_letters
    by_key = {json.loads(letter["payloadString"])["id"]: letter for letter in refused}
    assert sorted(by_key) == ["k1", "k2", "k3", "k5"]
    assert {(letter["reason"], letter["origin"]) for letter in refused} == {(Reason.OUTPUT_REJECTED, "gs://b/out/p")}
    assert json.loads(by_key["k1"]["payloadString"]) == too_big  # the row as it was formatted
    refusal = "the Parquet schema refused the row: column"
    assert by_key["k1"]["errorMessage"].startswith(f"{refusal} year: ")
    assert by_key["k2"]["errorMessage"] == f"{refusal} label: a null where it holds none"
    assert by_key["k3"]["errorMessage"] == f"{refusal} counts: a null where it holds none"
    assert by_key["k5"]["errorMessage"] == f"{refusal} thumb_bytes: a BYTES value that is not base64"
