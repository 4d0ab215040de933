"""Rows, schemas and dead letters in Vertex AI batch prediction's shape: instance (or key) and prediction,
inputs as columns in BigQuery, and {"instance", "error"} dead letters."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR
from pipeline.data.rows import MODEL_VERSION, VERTEX, RowLayout, json_lines
from pipeline.data.vertex_rows import (
    DEAD_LETTER_SCHEMA,
    INVALID_ARGUMENT,
    per_instance,
    record_as_read,
    vertex_dead_letter,
    vertex_rows,
    vertex_schema,
)
from pipeline.model.signatures import TensorSpec

SCORE = TensorSpec("score", "float32", ())
LABEL = TensorSpec("label", "string", ())
VALUES = TensorSpec("values", "float32", (2,))
TAG = TensorSpec("tag", "string", ())
PAYLOADS = [b'{"values": [0.1, 0.2], "tag": "a"}', b'{"values": [0.3, 0.4], "tag": "b"}']


def scored(features, outputs, keys=(7, -2), included=None, model_version=None) -> ScoredBatch:
    source = RecordBatch("in.jsonl", 1, PAYLOADS[: len(keys)])
    key_array = np.array(keys, dtype=object if keys and isinstance(keys[0], str) else np.int64)
    instances = InstanceBatch(key_array, features, source, np.arange(len(keys)), included)
    return ScoredBatch(instances, outputs, model_version)


def two_instances() -> ScoredBatch:
    return scored(
        {
            "values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32),
            "tag": np.array([b"a", b"b"], dtype=object),
        },
        {
            "score": np.array([0.1, 0.7], dtype=np.float32),
            "label": np.array([b"cat", b"dog"], dtype=object),
        },
    )


# ------------------------------------------------------------------ per_instance


def test_per_instance_writes_float32_in_the_shortest_decimal_that_round_trips():
    """A float32 0.1 is 0.1, not float64's 0.10000000149011612."""
    assert per_instance(np.array([0.1, 1 / 3, 2.0], dtype=np.float32)) == [0.1, 0.33333334, 2.0]
    assert per_instance(np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)) == [[0.1, 0.2], [0.3, 0.4]]


def test_per_instance_keeps_integers_and_booleans():
    assert per_instance(np.array([3, -1], dtype=np.int64)) == [3, -1]
    assert per_instance(np.array([True, False])) == [True, False]


def test_per_instance_writes_text_as_text_and_other_bytes_as_b64_objects():
    assert per_instance(np.array([b"caf\xc3\xa9", b"\xff\x00"], dtype=object)) == ["café", {"b64": "/wA="}]
    nested = np.array([[b"x", b"\xfe"], [b"y", b"z"]], dtype=object)
    assert per_instance(nested) == [["x", {"b64": "/g=="}], ["y", "z"]]


def test_per_instance_of_an_empty_batch_is_empty():
    assert per_instance(np.zeros((0, 3), dtype=np.float32)) == []


# ------------------------------------------------------------------ vertex_rows as JSON


def test_keyed_rows_are_key_and_the_one_outputs_value():
    rows = vertex_rows(two_instances(), (SCORE,), keyed=True, array_input=None, as_table=False)
    assert rows == [{"key": 7, "prediction": 0.1}, {"key": -2, "prediction": 0.7}]


def test_rows_without_a_key_are_the_instance_by_input_name_and_the_prediction():
    rows = vertex_rows(two_instances(), (SCORE,), keyed=False, array_input=None, as_table=False)
    assert rows == [
        {"instance": {"values": [0.1, 0.2], "tag": "a"}, "prediction": 0.1},
        {"instance": {"values": [0.3, 0.4], "tag": "b"}, "prediction": 0.7},
    ]


def test_several_outputs_make_a_prediction_object_of_every_output_by_name():
    rows = vertex_rows(two_instances(), (SCORE, LABEL), keyed=True, array_input=None, as_table=False)
    assert rows == [
        {"key": 7, "prediction": {"score": 0.1, "label": "cat"}},
        {"key": -2, "prediction": {"score": 0.7, "label": "dog"}},
    ]


def test_an_array_instance_is_written_as_the_array_it_fed():
    batch = scored({"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)}, {"score": np.ones(2, np.float32)})
    rows = vertex_rows(batch, (SCORE,), keyed=False, array_input="values", as_table=False)
    assert rows == [{"instance": [0.1, 0.2], "prediction": 1.0}, {"instance": [0.3, 0.4], "prediction": 1.0}]


def test_binary_inputs_and_outputs_are_b64_objects():
    batch = scored(
        {"image": np.array([b"\x89PNG", b"GIF8"], dtype=object)},
        {"label": np.array([b"\xff", b"ok"], dtype=object)},
    )
    rows = vertex_rows(batch, (LABEL,), keyed=False, array_input=None, as_table=False)
    assert rows == [
        {"instance": {"image": {"b64": base64.b64encode(b"\x89PNG").decode()}}, "prediction": {"b64": "/w=="}},
        {"instance": {"image": "GIF8"}, "prediction": "ok"},
    ]


def test_string_keys_are_kept_as_given():
    batch = scored({"tag": np.array([b"a"], dtype=object)}, {"score": np.array([0.5], np.float32)}, keys=("id-1",))
    assert vertex_rows(batch, (SCORE,), keyed=True, array_input=None, as_table=False) == [
        {"key": "id-1", "prediction": 0.5}
    ]


# ------------------------------------------------------------------ vertex_rows as BigQuery rows


def test_table_rows_hold_the_key_the_inputs_as_columns_and_the_prediction_as_json_text():
    rows = vertex_rows(two_instances(), (SCORE, LABEL), keyed=True, array_input=None, as_table=True)
    assert rows == [
        {"key": 7, "values": [0.1, 0.2], "tag": "a", "prediction": '{"score":0.1,"label":"cat"}'},
        {"key": -2, "values": [0.3, 0.4], "tag": "b", "prediction": '{"score":0.7,"label":"dog"}'},
    ]
    assert list(rows[0]) == ["key", "values", "tag", "prediction"]


def test_table_rows_without_a_key_have_no_key_column():
    rows = vertex_rows(two_instances(), (SCORE,), keyed=False, array_input=None, as_table=True)
    assert rows[0] == {"values": [0.1, 0.2], "tag": "a", "prediction": "0.1"}


def test_a_table_rows_array_instance_is_the_instance_column():
    batch = scored({"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)}, {"score": np.ones(2, np.float32)})
    rows = vertex_rows(batch, (SCORE,), keyed=False, array_input="values", as_table=True)
    assert rows == [{"instance": [0.1, 0.2], "prediction": "1.0"}, {"instance": [0.3, 0.4], "prediction": "1.0"}]


def test_a_matrix_or_binary_input_is_json_text_in_its_column():
    """BigQuery arrays do not nest, and a BYTES value in {"b64": ...} is not a STRING."""
    batch = scored(
        {
            "grid": np.arange(8, dtype=np.int64).reshape(2, 2, 2),
            "image": np.array([b"\xff", b"png"], dtype=object),
        },
        {"score": np.array([0.5, 0.25], np.float32)},
    )
    inputs = (TensorSpec("grid", "int64", (2, 2)), TensorSpec("image", "string", ()))
    rows = vertex_rows(batch, (SCORE,), keyed=True, array_input=None, as_table=True, inputs=inputs)
    assert rows == [
        {"key": 7, "grid": "[[0,1],[2,3]]", "image": '{"b64":"/w=="}', "prediction": "0.5"},
        {"key": -2, "grid": "[[4,5],[6,7]]", "image": "png", "prediction": "0.25"},
    ]


def test_a_text_vector_input_is_one_json_text_column_so_binary_values_fit():
    """A REPEATED STRING column could not hold {"b64": ...}; JSON text holds text and binary alike."""
    tags = np.empty(2, dtype=object)
    tags[0] = np.array([b"ok", b"\xff"], dtype=object)
    tags[1] = np.array([b"\xfe"], dtype=object)
    batch = scored({"tags": tags}, {"score": np.array([0.5, 0.25], np.float32)})
    tags_spec = TensorSpec("tags", "string", (None,))
    (column,) = vertex_schema((tags_spec,), None, None)["fields"][:1]
    assert column == {"name": "tags", "type": "STRING", "mode": "NULLABLE"}
    rows = vertex_rows(batch, (SCORE,), keyed=False, array_input=None, as_table=True, inputs=(tags_spec,))
    assert [row["tags"] for row in rows] == ['["ok",{"b64":"/w=="}]', '[{"b64":"/g=="}]']


# ------------------------------------------------------------------ vertex_schema


def test_the_schema_is_the_key_the_inputs_by_dtype_and_shape_then_prediction_as_json_text():
    inputs = (
        TensorSpec("count", "int64", ()),
        TensorSpec("flag", "bool", ()),
        TensorSpec("tag", "string", ()),
        TensorSpec("values", "float32", (None,)),
        TensorSpec("ids", "uint8", (3,)),
        TensorSpec("grid", "float32", (2, 2)),
        TensorSpec("half", "float16", ()),
    )
    assert vertex_schema(inputs, "STRING", None) == {
        "fields": [
            {"name": "key", "type": "STRING", "mode": "NULLABLE"},
            {"name": "count", "type": "INTEGER", "mode": "NULLABLE"},
            {"name": "flag", "type": "BOOLEAN", "mode": "NULLABLE"},
            {"name": "tag", "type": "STRING", "mode": "NULLABLE"},
            {"name": "values", "type": "FLOAT", "mode": "REPEATED"},
            {"name": "ids", "type": "INTEGER", "mode": "REPEATED"},
            {"name": "grid", "type": "STRING", "mode": "NULLABLE"},
            {"name": "half", "type": "FLOAT", "mode": "NULLABLE"},
            {"name": "prediction", "type": "STRING", "mode": "NULLABLE"},
        ]
    }


def test_a_schema_without_a_key_type_has_no_key_and_an_array_input_is_the_instance_column():
    assert vertex_schema((VALUES,), None, "values") == {
        "fields": [
            {"name": "instance", "type": "FLOAT", "mode": "REPEATED"},
            {"name": "prediction", "type": "STRING", "mode": "NULLABLE"},
        ]
    }


def test_rank_two_or_more_inputs_are_string_json_columns():
    inputs = (TensorSpec("image", "float32", (2, 2, 3)), TensorSpec("words", "string", (None, None)))
    fields = vertex_schema(inputs, "INTEGER", None)["fields"]
    assert [(field["name"], field["type"], field["mode"]) for field in fields] == [
        ("key", "INTEGER", "NULLABLE"),
        ("image", "STRING", "NULLABLE"),
        ("words", "STRING", "NULLABLE"),
        ("prediction", "STRING", "NULLABLE"),
    ]


# ------------------------------------------------------------------ dead letters


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


def letter(payload: bytes, position: str | None = "in.jsonl:3", origin: str = "in.jsonl") -> DeadLetter:
    return DeadLetter(origin, payload, Reason.MISSING_FIELD, "the record has no field 'tag'", position=position)


def test_a_dead_letter_is_the_instance_and_an_invalid_argument_error_saying_why_and_where():
    assert INVALID_ARGUMENT == 3
    assert vertex_dead_letter(letter(b'{"values": [1, 2]}'), as_table=False) == {
        "instance": {"values": [1, 2]},
        "error": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }


def test_a_dead_letter_without_a_position_names_its_origin_and_one_with_neither_names_nothing():
    without_position = vertex_dead_letter(letter(b"x", position=None), as_table=False)
    assert without_position["error"]["message"] == "missing_field: the record has no field 'tag' (in.jsonl)"
    nowhere = vertex_dead_letter(letter(b"x", position=None, origin=""), as_table=False)
    assert nowhere["error"]["message"] == "missing_field: the record has no field 'tag'"


def test_a_dead_letter_row_holds_the_instance_as_json_text_and_errors_as_a_struct():
    row = vertex_dead_letter(letter(b'{"values": [1, 2]}'), as_table=True)
    assert row == {
        "instance": '{"values":[1,2]}',
        "errors": {"code": 3, "message": "missing_field: the record has no field 'tag' (in.jsonl:3)"},
    }
    assert vertex_dead_letter(letter(b"\xff"), as_table=True)["instance"] == '{"b64":"/w=="}'
    assert vertex_dead_letter(letter(b"1,2"), as_table=True)["instance"] == '"1,2"'


def test_the_dead_letter_schema_has_the_columns_a_dead_letter_row_fills():
    row = vertex_dead_letter(letter(b"{}"), as_table=True)
    fields = DEAD_LETTER_SCHEMA["fields"]
    assert [field["name"] for field in fields] == list(row) == ["instance", "errors"]
    assert [(field["name"], field["type"]) for field in fields[1]["fields"]] == [
        ("code", "INTEGER"),
        ("message", "STRING"),
    ]
    assert [field["mode"] for field in fields] == ["NULLABLE", "NULLABLE"]


# ------------------------------------------------------------------ RowLayout(shape=VERTEX)


def test_a_vertex_layout_adds_the_version_and_included_fields_as_top_level_fields():
    layout = RowLayout(
        (SCORE,),
        key_kind=KEY_POSITION,
        included=(("island", "STRING"), ("year", "INTEGER")),
        versioned=True,
        shape=VERTEX,
        inputs=(VALUES, TAG),
    )
    batch = scored(
        {"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32), "tag": np.array([b"a", b"b"], dtype=object)},
        {"score": np.array([0.1, 0.7], dtype=np.float32)},
        included=[{"island": "Biscoe", "year": 2007}, {"island": "Dream", "year": 2009}],
        model_version=3,
    )
    rows, letters = layout.rows(batch)
    assert letters == []
    assert rows == [
        {
            "instance": {"values": [0.1, 0.2], "tag": "a"},
            "prediction": 0.1,
            MODEL_VERSION: 3,
            "island": "Biscoe",
            "year": 2007,
        },
        {
            "instance": {"values": [0.3, 0.4], "tag": "b"},
            "prediction": 0.7,
            MODEL_VERSION: 3,
            "island": "Dream",
            "year": 2009,
        },
    ]
    table_rows, _ = layout.rows(batch, as_table=True)
    assert table_rows[0] == {
        "values": [0.1, 0.2],
        "tag": "a",
        "prediction": "0.1",
        MODEL_VERSION: 3,
        "island": "Biscoe",
        "year": 2007,
    }
    assert layout.schema() == {
        "fields": [
            {"name": "values", "type": "FLOAT", "mode": "REPEATED"},
            {"name": "tag", "type": "STRING", "mode": "NULLABLE"},
            {"name": "prediction", "type": "STRING", "mode": "NULLABLE"},
            {"name": MODEL_VERSION, "type": "INTEGER", "mode": "NULLABLE"},
            {"name": "island", "type": "STRING", "mode": "NULLABLE"},
            {"name": "year", "type": "INTEGER", "mode": "NULLABLE"},
        ]
    }
    for row in table_rows:
        assert list(row) == [field["name"] for field in layout.schema()["fields"]]


@pytest.mark.parametrize(("key_kind", "key_type"), [(KEY_INT, "INTEGER"), (KEY_STR, "STRING")])
def test_a_keyed_vertex_layout_writes_the_key_not_the_instance(key_kind, key_type):
    layout = RowLayout((SCORE,), key_kind=key_kind, versioned=True, shape=VERTEX, inputs=(VALUES,))
    keys = (7, -2) if key_kind == KEY_INT else ("a", "b")
    batch = scored(
        {"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)},
        {"score": np.array([0.1, 0.7], dtype=np.float32)},
        keys=keys,
        model_version=1,
    )
    rows, letters = layout.rows(batch)
    assert (rows, letters) == (
        [{"key": keys[0], "prediction": 0.1, MODEL_VERSION: 1}, {"key": keys[1], "prediction": 0.7, MODEL_VERSION: 1}],
        [],
    )
    assert [(field["name"], field["type"]) for field in layout.schema()["fields"]] == [
        ("key", key_type),
        ("values", "FLOAT"),
        ("prediction", "STRING"),
        (MODEL_VERSION, "INTEGER"),
    ]


def test_a_vertex_layouts_included_value_that_does_not_fit_its_column_is_a_dead_letter():
    layout = RowLayout((SCORE,), key_kind=KEY_POSITION, included=(("year", "INTEGER"),), shape=VERTEX, inputs=(TAG,))
    batch = scored(
        {"tag": np.array([b"a", b"b"], dtype=object)},
        {"score": np.array([0.1, 0.7], dtype=np.float32)},
        included=[{"year": 2007}, {"year": "soon"}],
    )
    rows, letters = layout.rows(batch)
    assert rows == [{"instance": {"tag": "a"}, "prediction": 0.1, "year": 2007}]
    assert [(item.payload, item.reason) for item in letters] == [(PAYLOADS[1], Reason.WRONG_TYPE)]


def test_vertex_rows_are_written_as_json_lines_with_float32_in_its_shortest_decimal():
    layout = RowLayout((SCORE, LABEL), shape=VERTEX, inputs=(VALUES, TAG))
    rows, _ = layout.rows(two_instances())
    assert json_lines(rows) == (
        '{"key":7,"prediction":{"score":0.1,"label":"cat"}}\n{"key":-2,"prediction":{"score":0.7,"label":"dog"}}'
    )
