"""Dead letters in Vertex AI's error shape: the instance as Vertex AI would have sent it (or its key), and an
error whose code is the google.rpc.Code of the failure; in BigQuery, the errors table's columns."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest

from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.instances import KEY_POSITION
from pipeline.data.rows import VERTEX, RowLayout
from pipeline.data.vertex_errors import (
    CODE_NAMES,
    ERRORS_COLUMN,
    REASON_CODES,
    UNKNOWN,
    errors_schema,
    letter_code,
    rpc_code,
    vertex_dead_letter,
)
from pipeline.data.vertex_rows import ARRAY, B64, URI, VertexShape, record_as_read
from pipeline.model.signatures import TensorSpec

UNKEYED = VertexShape(keyed=False)
KEYED = VertexShape(keyed=True, key_field="id")


def letter(payload: bytes, reason: str = Reason.MISSING_FIELD, position: str | None = "in.jsonl:3") -> DeadLetter:
    return DeadLetter("in.jsonl", payload, reason, "the record has no field 'tag'", position=position)


# ------------------------------------------------------------------ codes


def test_every_reason_has_a_google_rpc_code():
    """A new reason must choose its code here; none falls to UNKNOWN unnoticed."""
    reasons = {value for name, value in inspect.getmembers(Reason) if name.isupper() and isinstance(value, str)}
    assert reasons == set(REASON_CODES)
    assert set(REASON_CODES.values()) <= set(CODE_NAMES)


@pytest.mark.parametrize(
    ("reason", "code", "name"),
    [
        (Reason.WRONG_TYPE, 3, "INVALID_ARGUMENT"),  # the record does not fit the model
        (Reason.NOT_JSON, 3, "INVALID_ARGUMENT"),
        (Reason.KEY_OUT_OF_RANGE, 11, "OUT_OF_RANGE"),
        (Reason.INFERENCE_FAILED, 13, "INTERNAL"),  # the model failed on it
        (Reason.NON_FINITE_SCORE, 13, "INTERNAL"),
        (Reason.CORRUPT_INPUT, 15, "DATA_LOSS"),  # the input is damaged
        (Reason.TRUNCATED_INPUT, 15, "DATA_LOSS"),
        (Reason.OUTPUT_REJECTED, 3, "INVALID_ARGUMENT"),  # a row refused for its content
    ],
)
def test_the_code_says_the_kind_of_failure(reason, code, name):
    assert (rpc_code(reason), CODE_NAMES[rpc_code(reason)]) == (code, name)


def test_a_reason_the_table_does_not_know_is_unknown():
    assert rpc_code("made_up") == UNKNOWN == 2


def test_a_code_the_failure_carried_wins_over_its_reasons():
    """TensorFlow's InvalidArgumentError carries 3 (as TensorFlow Serving answers), memory RESOURCE_EXHAUSTED."""
    failed = DeadLetter("in.jsonl", b"{}", Reason.INFERENCE_FAILED, "assertion failed", code=3)
    assert letter_code(failed) == 3 and vertex_dead_letter(failed, UNKEYED)["error"]["code"] == 3
    out_of_memory = dataclasses.replace(failed, code=8)
    status = VertexShape(keyed=False, error_status=True)
    assert vertex_dead_letter(out_of_memory, status)["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert vertex_dead_letter(out_of_memory, UNKEYED, [], as_table=True)["errors"]["code"] == 8
    assert letter_code(dataclasses.replace(failed, code=None)) == 13  # none carried: INTERNAL


# ------------------------------------------------------------------ the record as read


@pytest.mark.parametrize(
    ("payload", "read"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", [1, 2]),
        (b"7", 7),
        (b"3:0.5,0.25", "3:0.5,0.25"),
        (b"", ""),
        (b"\xff\x00", {"b64": "/wA="}),
    ],
)
def test_a_record_is_read_as_json_else_text_else_b64(payload, read):
    assert record_as_read(payload) == read


def test_a_csv_line_is_read_by_the_header_with_vertex_ais_typing():
    assert record_as_read(b'1,"x",2.5,\n', ("id", "tag", "v", "w")) == {"id": 1, "tag": "x", "v": 2.5, "w": None}
    assert record_as_read(b"1,2\n", ("id", "tag", "v")) == "1,2\n"  # the wrong number of cells: its text


@pytest.mark.parametrize(("line", "read"), [(b"5\n", {"x": 5}), (b'"abc"\n', {"x": "abc"}), (b"[1]\n", {"x": "[1]"})])
def test_a_csv_line_is_read_as_csv_before_json(line, read):
    """A one-column CSV's `5` is the field x=5, not the JSON number 5; nor is a line of the wrong width JSON."""
    assert record_as_read(line, ("x",)) == read
    assert record_as_read(b"5\n", ("x", "y")) == "5\n"


# ------------------------------------------------------------------ JSON lines


def test_an_error_line_is_the_instance_and_the_code_and_message_of_google_rpc_status():
    """BatchPredictionJob.OutputConfig: the failed instance, then `error` with only `code` and `message`."""
    assert vertex_dead_letter(letter(b'{"values": [1, 2]}'), UNKEYED) == {
        "instance": {"values": [1, 2]},
        "error": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }


def test_the_status_form_names_the_code_as_the_prediction_result_schema_does():
    shape = VertexShape(keyed=False, error_status=True)
    assert vertex_dead_letter(letter(b"{}", Reason.INFERENCE_FAILED), shape)["error"] == {
        "status": "INTERNAL",
        "message": "inference_failed: the record has no field 'tag' (in.jsonl:3)",
    }


def test_a_keyed_error_line_is_the_key_and_the_error_or_the_instance_where_the_key_is_missing():
    assert vertex_dead_letter(letter(b'{"id": 9, "v": 1}'), KEYED) == {
        "key": 9,
        "error": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }
    assert vertex_dead_letter(letter(b'{"v": 1}'), KEYED)["instance"] == {"v": 1}


def test_the_instance_is_what_vertex_ai_would_have_sent_and_the_attached_fields_come_back_beside_it():
    included = VertexShape(keyed=False, instance_fields=("a", "b"))
    assert vertex_dead_letter(letter(b'{"a": 1, "b": 2, "c": 3}'), included)["instance"] == {"a": 1, "b": 2}
    excluded = VertexShape(keyed=False, excluded=("label",))
    line = vertex_dead_letter(letter(b'{"a": 1, "label": "cat"}'), excluded, attached=(("label", "STRING"),))
    assert (line["instance"], line["label"]) == ({"a": 1}, "cat")
    array = VertexShape(keyed=False, instance=ARRAY, array_input="v", array_fields=("b", "a"))
    assert vertex_dead_letter(letter(b'{"a": 1, "b": 2}'), array)["instance"] == [2, 1]


def test_a_csv_error_line_is_the_array_of_the_rows_values_and_its_key():
    shape = VertexShape(
        keyed=False, instance=ARRAY, array_input="v", array_fields=("a", "b"), csv_header=("id", "a", "b")
    )
    assert vertex_dead_letter(letter(b"7,1.5,x\n"), shape)["instance"] == [1.5, "x"]
    keyed = VertexShape(keyed=True, key_field="id", csv_header=("id", "a", "b"))
    assert vertex_dead_letter(letter(b"7,1.5,x\n"), keyed)["key"] == 7


def test_a_listed_files_error_instance_is_its_uri_and_a_tfrecords_its_b64_bytes():
    damaged = DeadLetter("gs://b/1.png", b"\x89PNG", Reason.INFERENCE_FAILED, "bad image", position="gs://b/1.png")
    assert vertex_dead_letter(damaged, VertexShape(keyed=False, instance=URI))["instance"] == "gs://b/1.png"
    assert vertex_dead_letter(damaged, VertexShape(keyed=False, instance=B64))["instance"] == {"b64": "iVBORw=="}


def test_a_message_names_its_origin_without_a_position_and_nothing_with_neither():
    assert vertex_dead_letter(letter(b"x", position=None), UNKEYED)["error"]["message"] == (
        "missing_field: the record has no field 'tag' (in.jsonl)"
    )
    nowhere = DeadLetter("", b"x", Reason.MISSING_FIELD, "the record has no field 'tag'")
    assert vertex_dead_letter(nowhere, UNKEYED)["error"]["message"] == "missing_field: the record has no field 'tag'"


# ------------------------------------------------------------------ the errors table

COLUMNS = [
    {"name": "bill", "type": "FLOAT", "mode": "NULLABLE"},
    {"name": "island", "type": "STRING", "mode": "NULLABLE"},
    {"name": "tags", "type": "INTEGER", "mode": "REPEATED"},
]


def test_an_errors_row_holds_the_instance_columns_then_errors_with_code_and_message():
    """OutputConfig: "instance columns ... followed by a single errors column ... a STRUCT ... code and message"."""
    row = vertex_dead_letter(letter(b'{"bill": 39, "island": "Dream", "tags": [1]}'), UNKEYED, COLUMNS, as_table=True)
    assert row == {
        "bill": 39.0,
        "island": "Dream",
        "tags": [1],
        "errors": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }
    assert list(errors_schema(COLUMNS)["fields"]) == [*COLUMNS, ERRORS_COLUMN]
    assert [(field["name"], field["type"]) for field in ERRORS_COLUMN["fields"]] == [
        ("code", "INTEGER"),
        ("message", "STRING"),
    ]


def test_a_value_no_column_holds_is_null_and_the_message_keeps_the_record():
    payload = b'{"bill": "long", "island": "Dream", "beak": 3}'
    row = vertex_dead_letter(letter(payload, Reason.WRONG_TYPE), UNKEYED, COLUMNS, as_table=True)
    assert (row["bill"], row["island"], row["tags"]) == (None, "Dream", None)
    assert row["errors"]["message"].endswith(f"(in.jsonl:3); the record: {payload.decode()}")


def test_a_record_that_is_not_fields_keeps_its_text_in_the_message():
    row = vertex_dead_letter(letter(b"not json", Reason.NOT_JSON), UNKEYED, COLUMNS, as_table=True)
    assert (row["bill"], row["errors"]["code"]) == (None, 3)
    assert row["errors"]["message"].endswith("; the record: not json")


def test_a_keyed_errors_row_is_the_key_and_errors_and_keeps_the_record_where_there_is_no_key():
    key = [{"name": "key", "type": "INTEGER", "mode": "NULLABLE"}]
    row = vertex_dead_letter(letter(b'{"id": 9}'), KEYED, key, as_table=True)
    assert row == {
        "key": 9,
        "errors": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }
    keyless = vertex_dead_letter(letter(b'{"v": 1}'), KEYED, key, as_table=True)
    assert keyless["key"] is None and keyless["errors"]["message"].endswith('; the record: {"v": 1}')


def test_the_errors_table_holds_the_attached_fields_after_errors_as_json_error_lines_do():
    """Excluded fields attached (no key field given) and --included_fields: columns after `errors`, as after
    `prediction` in the predictions table; a value that does not fit is NULL and the message keeps the record."""
    attached = (("label", "STRING"), ("year", "INTEGER"))
    excluded = VertexShape(keyed=False, excluded=("label",))
    row = vertex_dead_letter(letter(b'{"bill": 1, "label": "cat", "year": 2007}'), excluded, COLUMNS, True, attached)
    assert (row["label"], row["year"]) == ("cat", 2007)
    assert list(row) == ["bill", "island", "tags", "errors", "label", "year"]
    assert [field["name"] for field in errors_schema(COLUMNS, attached)["fields"]] == list(row)
    odd = vertex_dead_letter(letter(b'{"bill": 1, "year": "soon"}'), excluded, COLUMNS, True, attached)
    assert odd["year"] is None and odd["errors"]["message"].endswith('; the record: {"bill": 1, "year": "soon"}')


def test_a_vertex_layouts_errors_table_and_lines_carry_its_attached_fields():
    layout = RowLayout(
        (TensorSpec("score", "float32", ()),),
        key_kind=KEY_POSITION,
        included=(("label", "STRING"),),
        shape=VERTEX,
        inputs=(TensorSpec("bill", "float32", ()),),
        vertex=VertexShape(keyed=False, excluded=("label",)),
    )
    failed = letter(b'{"bill": "long", "label": "cat"}', Reason.WRONG_TYPE)
    assert [field["name"] for field in layout.dead_letter_schema()["fields"]] == ["bill", "errors", "label"]
    assert layout.dead_letter_row(failed, as_table=True)["label"] == "cat"
    assert layout.dead_letter_row(failed, as_table=False)["label"] == "cat"


# ------------------------------------------------------------------ rows the output refused


def refused(row: dict) -> DeadLetter:
    return DeadLetter("p:d.predictions", json.dumps(row).encode(), Reason.OUTPUT_REJECTED, "BigQuery refused it")


def test_a_refused_prediction_rows_instance_is_the_instance_it_holds_not_the_prediction():
    """A streaming insert (or a Parquet schema) refuses a prediction row: its dead letter's payload is that row."""
    row = {"bill": 39.5, "island": "Dream", "tags": [1], "prediction": "0.25", "label": "cat"}
    attached = (("label", "STRING"),)
    line = vertex_dead_letter(refused(row), UNKEYED, COLUMNS, attached=attached)
    assert line == {
        "instance": {"bill": 39.5, "island": "Dream", "tags": [1]},
        "error": {"code": 3, "message": "output_rejected: BigQuery refused it (p:d.predictions)"},
        "label": "cat",
    }
    table = vertex_dead_letter(refused(row), UNKEYED, COLUMNS, as_table=True, attached=attached)
    assert table == {"bill": 39.5, "island": "Dream", "tags": [1], "errors": line["error"], "label": "cat"}
    key = [{"name": "key", "type": "INTEGER", "mode": "NULLABLE"}]
    assert vertex_dead_letter(refused({"key": 7, "prediction": "1"}), KEYED, key)["key"] == 7


def test_a_refused_file_list_row_is_its_files_uri_not_the_table():
    uri = [{"name": "instance", "type": "STRING", "mode": "NULLABLE"}]
    row = {"instance": "gs://b/1.png", "prediction": "[0.5]"}
    shape = VertexShape(keyed=False, instance=URI)
    assert vertex_dead_letter(refused(row), shape, uri)["instance"] == "gs://b/1.png"
    assert vertex_dead_letter(refused(row), shape, uri, as_table=True)["instance"] == "gs://b/1.png"
    raw = [{"name": "instance", "type": "BYTES", "mode": "NULLABLE"}]
    tfrecord = vertex_dead_letter(refused({"instance": "iVBORw==", "prediction": "1"}), VertexShape(False, B64), raw)
    assert tfrecord["instance"] == {"b64": "iVBORw=="}


def test_a_listed_files_errors_row_is_its_uri_and_a_tfrecords_its_bytes():
    damaged = DeadLetter("gs://b/1.png", b"\x89PNG", Reason.INFERENCE_FAILED, "bad image", position="gs://b/1.png")
    uri = [{"name": "instance", "type": "STRING", "mode": "NULLABLE"}]
    assert vertex_dead_letter(damaged, VertexShape(keyed=False, instance=URI), uri, as_table=True)["instance"] == (
        "gs://b/1.png"
    )
    raw = [{"name": "instance", "type": "BYTES", "mode": "NULLABLE"}]
    assert vertex_dead_letter(damaged, VertexShape(keyed=False, instance=B64), raw, as_table=True)["instance"] == (
        "iVBORw=="
    )
