"""Prediction rows through a UDF after the model: JSON lines for files and topics, rows that fit the columns for
tables and Parquet, and every failure a dead letter of the record that made the row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.rows import RowLayout
from pipeline.data.udf import UdfCode
from pipeline.data.udf_rows import after_model, row_instances, row_problem
from pipeline.model.signatures import TensorSpec

SOURCE = """\
import numpy as np


def finish(row):
    if row["key"] == 2:
        raise ValueError("no label for 2")
    if row["key"] == 3:
        return ["not", "a", "row"]
    if row["key"] == 4:
        return {"key": 4, "labels": {"a", "b"}}
    row["label_name"] = "gentoo"
    row["score"] = np.float32(0.5)
    return row


def rounded(row):
    return dict(row, score=round(row["score"], 1))


def typed_wrong(row):
    return dict(row, score="high")


def numpy_values(row):
    return dict(row, key=np.int64(row["key"]), score=np.float32(row["score"]), island=np.str_("Biscoe"))
"""
LAYOUT = RowLayout((TensorSpec("score", "float32", ()),), included=(("island", "STRING"),))
SCHEMA = LAYOUT.schema()


def scored(keys: list[int], islands: list | None = None) -> ScoredBatch:
    source = RecordBatch("in.jsonl", 1, [json.dumps({"key": key}).encode() for key in keys])
    included = [{"island": island} for island in islands] if islands is not None else [{"island": "Dream"}] * len(keys)
    instances = InstanceBatch(np.array(keys), {}, source, np.arange(len(keys)), included)
    return ScoredBatch(instances, {"score": np.array([0.25 + key for key in keys], dtype=np.float32)})


def run(name: str, batch: ScoredBatch, as_table: bool = False):
    rows, letters = LAYOUT.rows(batch, as_table=as_table)
    indices = row_instances(LAYOUT, batch, as_table, len(letters))
    return after_model(
        UdfCode("after.py", SOURCE, after=name), batch.instances, rows, indices, SCHEMA if as_table else None
    )


def test_json_rows_may_hold_anything_json_can_and_failures_are_dead_letters_of_their_records():
    lines, letters = run("finish", scored([1, 2, 3, 4]))
    assert [json.loads(line) for line in lines] == [{"key": 1, "score": 0.5, "island": "Dream", "label_name": "gentoo"}]
    by_key = {json.loads(letter.payload)["key"]: letter for letter in letters}
    assert sorted(by_key) == [2, 3, 4] and {letter.reason for letter in letters} == {"udf_error"}
    assert by_key[2].message == "after.py:6 in finish: ValueError: no label for 2"
    assert 'raise ValueError("no label for 2")' in by_key[2].stacktrace and by_key[2].position == "in.jsonl:2"
    assert by_key[3].message == "finish() returned list ['not', 'a', 'row']: it must return a dict, the row to write"
    assert by_key[4].message.startswith("finish() returned a row JSON cannot hold: Type is not JSON serializable: set")


def test_table_rows_must_fit_the_columns():
    rows, letters = run("rounded", scored([1, 2]), as_table=True)
    assert rows == [{"key": 1, "score": 1.2, "island": "Dream"}, {"key": 2, "score": 2.2, "island": "Dream"}]
    assert letters == []
    _, letters = run("typed_wrong", scored([1]), as_table=True)
    assert letters[0].message == (
        "typed_wrong() returned a row that does not fit the output: column 'score' is FLOAT: str 'high' does not fit"
    )
    _, letters = run("finish", scored([1]), as_table=True)
    assert "the output has no column label_name (its columns: key, score, island)" in letters[0].message


FIELDS = [
    {"name": "key", "type": "INTEGER", "mode": "REQUIRED"},
    {"name": "scores", "type": "FLOAT", "mode": "REPEATED"},
    {"name": "image_bytes", "type": "BYTES", "mode": "NULLABLE"},
    {"name": "ok", "type": "BOOLEAN", "mode": "NULLABLE"},
    {"name": "nested", "type": "RECORD", "mode": "NULLABLE", "fields": [{"name": "code", "type": "INTEGER"}]},
    {"name": "when", "type": "TIMESTAMP", "mode": "NULLABLE"},
]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"key": 1, "scores": [0.5, 1], "image_bytes": "iVBO", "ok": False, "nested": {"code": 3}}, None),
        ({"key": 1, "when": "2026-01-01T00:00:00Z"}, None),
        ({"scores": []}, "column 'key' is REQUIRED, and the row has no value for it"),
        ({"key": None}, "column 'key' is REQUIRED, and the row has no value for it"),
        ({"key": True}, "column 'key' is INTEGER: bool True does not fit"),
        ({"key": 2**63}, "column 'key' is INTEGER: int 9223372036854775808 does not fit"),
        ({"key": np.int64(1)}, "column 'key' is INTEGER: int64 np.int64(1) does not fit"),
        ({"key": 1, "scores": 0.5}, "column 'scores' is REPEATED: float 0.5 is not a list"),
        ({"key": 1, "scores": [0.5, float("nan")]}, "column 'scores' is FLOAT: float nan does not fit"),
        (
            {"key": 1, "image_bytes": b"\x89PNG"},
            "column 'image_bytes' is BYTES: give base64 text; bytes b'\\x89PNG' is not",
        ),
        ({"key": 1, "ok": 1}, "column 'ok' is BOOLEAN: int 1 does not fit"),
        ({"key": 1, "nested": {"code": "x"}}, "column 'code' is INTEGER: str 'x' does not fit"),
        ({"key": 1, "nested": {"other": 1}}, "the output has no column other (its columns: code)"),
        (
            {"key": 1, "extra": 1, "more": 2},
            "the output has no column extra, more (its columns: key, scores, image_bytes, ok, nested, when)",
        ),
    ],
)
def test_a_row_fits_a_schema_or_says_why_not(row, problem):
    assert row_problem(row, FIELDS) == problem


def test_rows_map_back_to_their_instances_where_an_included_field_made_no_row():
    layout = RowLayout((TensorSpec("score", "float32", ()),), included=(("island", "INTEGER"),))
    batch = scored([1, 2, 3], islands=[7, "Dream", 9])  # "Dream" cannot be an INTEGER column's value
    rows, letters = layout.rows(batch, as_table=True)
    assert len(rows) == 2 and len(letters) == 1
    assert list(row_instances(layout, batch, True, len(letters))) == [0, 2]
    assert row_instances(layout, batch, False, 0) == range(3)


def test_numpy_values_a_udf_returns_fit_a_tables_columns_as_python_values():
    rows, letters = run("numpy_values", scored([1, 2]), as_table=True)
    assert letters == []
    assert rows == [{"key": 1, "score": 1.25, "island": "Biscoe"}, {"key": 2, "score": 2.25, "island": "Biscoe"}]
    assert [type(value) for value in rows[0].values()] == [int, float, str]
    lines, letters = run("numpy_values", scored([1]))
    assert letters == [] and json.loads(lines[0]) == {"key": 1, "score": 1.25, "island": "Biscoe"}


def test_plain_turns_numpy_values_into_pythons_at_any_depth():
    from pipeline.data.udf_rows import plain

    value = {"a": np.arange(3), "b": [np.float32(0.5), (np.int8(1), np.bool_(True))], "c": {"d": np.uint64(7)}}
    assert plain(value) == {"a": [0, 1, 2], "b": [0.5, [1, True]], "c": {"d": 7}}
    assert type(plain(value)["c"]["d"]) is int and type(plain(value)["b"][1][1]) is bool
