"""Rows and schemas in Vertex AI batch prediction's shape: instance (or key) and prediction, the instance as
Vertex AI writes it for each input format (the record as read, as sent: not as fed to the model), its columns
in BigQuery. (Dead letters: test_vertex_errors; column types and values: test_vertex_columns.)"""

from __future__ import annotations

import base64
import datetime
from decimal import Decimal

import numpy as np
import pytest

from pipeline.data.batches import InstanceBatch, RecordBatch, RowBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR
from pipeline.data.rows import MODEL_VERSION, VERTEX, RowLayout, json_lines
from pipeline.data.vertex_rows import (
    ARRAY,
    B64,
    KEYED,
    OBJECT,
    PER_LINE,
    URI,
    VertexShape,
    instance_columns,
    per_instance,
    vertex_rows,
    vertex_schema,
)
from pipeline.model.signatures import TensorSpec

SCORE = TensorSpec("score", "float32", ())
LABEL = TensorSpec("label", "string", ())
VALUES = TensorSpec("values", "float32", (2,))
TAG = TensorSpec("tag", "string", ())
PAYLOADS = [b'{"values": [0.1, 0.2], "tag": "a"}', b'{"values": [0.3, 0.4], "tag": "b"}']


UNKEYED = VertexShape(keyed=False)


def scored(features, outputs, keys=(7, -2), included=None, model_version=None, payloads=None) -> ScoredBatch:
    source = RecordBatch("in.jsonl", 1, (payloads or PAYLOADS)[: len(keys)])
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


def test_per_instance_of_a_bytes_tensor_is_always_b64_as_in_tensorflow_servings_json():
    """TF Serving: a tensor named *_bytes is base64, even where its bytes happen to be UTF-8."""
    assert per_instance(np.array([b"ok", b"\xff"], dtype=object), as_b64=True) == [{"b64": "b2s="}, {"b64": "/w=="}]


def test_per_instance_of_an_empty_batch_is_empty():
    assert per_instance(np.zeros((0, 3), dtype=np.float32)) == []


# ------------------------------------------------------------------ vertex_rows as JSON


def rows_of(batch, outputs=(SCORE,), shape=UNKEYED, inputs=(), keyed=None, as_table=False):
    return vertex_rows(batch, outputs, inputs, shape, shape.keyed if keyed is None else keyed, as_table)


def test_keyed_rows_are_key_and_the_one_outputs_value():
    assert rows_of(two_instances(), shape=KEYED) == [{"key": 7, "prediction": 0.1}, {"key": -2, "prediction": 0.7}]


def test_rows_without_a_key_are_the_instance_by_input_name_and_the_prediction():
    """The guide's Example 2: an object line's instance is the object sent."""
    assert rows_of(two_instances()) == [
        {"instance": {"values": [0.1, 0.2], "tag": "a"}, "prediction": 0.1},
        {"instance": {"values": [0.3, 0.4], "tag": "b"}, "prediction": 0.7},
    ]


def test_several_outputs_make_a_prediction_object_of_every_output_by_name():
    assert rows_of(two_instances(), (SCORE, LABEL), KEYED) == [
        {"key": 7, "prediction": {"score": 0.1, "label": "cat"}},
        {"key": -2, "prediction": {"score": 0.7, "label": "dog"}},
    ]


def test_an_array_instance_is_written_as_the_array_it_was_read():
    batch = scored(
        {"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)},
        {"score": np.ones(2, np.float32)},
        payloads=[b"[0.1, 0.2]", b"[0.3, 0.4]"],
    )
    shape = VertexShape(keyed=False, instance=ARRAY, array_input="values")
    assert rows_of(batch, shape=shape) == [
        {"instance": [0.1, 0.2], "prediction": 1.0},
        {"instance": [0.3, 0.4], "prediction": 1.0},
    ]


def test_the_instance_is_the_record_as_read_not_as_fed_so_predictions_join_back_on_it():
    """InstanceConfig: the instance is what is "sent to the Model": a JSON number keeps its digits (float32 would
    make 16777217 16777216.0), and a field the model does not take stays in an object instance."""
    batch = scored(
        {"values": np.array([[1.23456789, 16777217, 3, 4], [1 / 3, 2, 3, 4]], dtype=np.float32)},
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[b"[1.23456789, 16777217, 3, 4]", b'{"values": [0.3333333333333333, 2, 3, 4], "id": 12}'],
    )
    shape = VertexShape(keyed=False, instance=PER_LINE, array_input="values")
    rows = rows_of(batch, shape=shape)
    assert json_lines(rows) == (
        '{"instance":[1.23456789,16777217,3,4],"prediction":0.5}\n'
        '{"instance":{"values":[0.3333333333333333,2,3,4],"id":12},"prediction":0.25}'
    )
    table = rows_of(batch, shape=shape, inputs=(TensorSpec("values", "float32", (4,)),), as_table=True)
    assert [row["values"] for row in table] == [[1.23456789, 16777217.0, 3.0, 4.0], [0.3333333333333333, 2, 3, 4]]


def test_a_csv_rows_instance_is_its_fields_as_vertex_ai_reads_them():
    batch = scored(
        {"values": np.array([[1.23456789, 16777217]], dtype=np.float32)},
        {"score": np.array([0.5], np.float32)},
        keys=(0,),
        payloads=[b'1.23456789,16777217,"x"\n'],
    )
    shape = VertexShape(
        keyed=False, instance=ARRAY, array_input="values", array_fields=("a", "b"), csv_header=("a", "b", "note")
    )
    assert rows_of(batch, shape=shape) == [{"instance": [1.23456789, 16777217], "prediction": 0.5}]


def test_a_tables_instance_is_its_row_in_the_columns_the_source_gave():
    """A BigQuery INTEGER column stays INTEGER (not the FLOAT of the model's input), every column is there, and
    values JSON lacks (NUMERIC, dates, bytes) are written as BigQuery holds them."""
    row = {"id": 9007199254740993, "a": 1.5, "price": Decimal("2.50"), "day": datetime.date(2024, 5, 1), "raw": b"\xff"}
    source = RowBatch("p.d.t", [row])
    instances = InstanceBatch(np.array([0]), {"a": np.array([1.5], np.float32)}, source, np.arange(1), None)
    batch = ScoredBatch(instances, {"score": np.array([0.5], np.float32)})
    columns = (
        ("id", "INTEGER", "NULLABLE"),
        ("a", "FLOAT", "NULLABLE"),
        ("price", "NUMERIC", "NULLABLE"),
        ("day", "DATE", "NULLABLE"),
        ("raw", "BYTES", "NULLABLE"),
    )
    shape = VertexShape(keyed=False, source_columns=columns)
    inputs = (TensorSpec("a", "float32", ()),)
    assert rows_of(batch, shape=shape, inputs=inputs, as_table=True) == [
        {"id": 9007199254740993, "a": 1.5, "price": "2.50", "day": "2024-05-01", "raw": "/w==", "prediction": "0.5"}
    ]
    assert [(field["name"], field["type"]) for field in vertex_schema(inputs, None, shape)["fields"]] == [
        *((name, kind) for name, kind, _ in columns),
        ("prediction", "STRING"),
    ]
    (line,) = rows_of(batch, shape=shape, inputs=inputs)
    assert line["instance"] == {"id": 9007199254740993, "a": 1.5, "price": "2.50", "day": "2024-05-01", "raw": "/w=="}


def test_a_parquet_rows_instance_is_its_columns_for_the_instances_scored():
    import pyarrow as pa

    from pipeline.data.batches import ColumnBatch

    table = pa.Table.from_pylist([{"id": 1, "a": 0.5}, {"id": 2, "a": 1.5}, {"id": 3, "a": 2.5}])
    source = ColumnBatch("gs://lake/part-0.parquet", 10, table)
    instances = InstanceBatch(np.array([0, 1]), {"a": np.array([2.5, 0.5], np.float32)}, source, np.array([2, 0]))
    batch = ScoredBatch(instances, {"score": np.array([0.5, 0.25], np.float32)})
    shape = VertexShape(keyed=False, source_columns=(("id", "INTEGER", "NULLABLE"), ("a", "FLOAT", "NULLABLE")))
    assert [row["instance"] for row in rows_of(batch, shape=shape)] == [{"id": 3, "a": 2.5}, {"id": 1, "a": 0.5}]
    assert rows_of(batch, shape=shape, as_table=True) == [
        {"id": 3, "a": 2.5, "prediction": "0.5"},
        {"id": 1, "a": 0.5, "prediction": "0.25"},
    ]


def test_the_instance_holds_the_fields_sent_included_or_all_but_the_excluded():
    batch = scored(
        {"values": np.array([[0.1, 0.2]], dtype=np.float32)},
        {"score": np.array([0.5], np.float32)},
        keys=(0,),
        payloads=[b'{"values": [0.1, 0.2], "id": 4, "label": "cat"}'],
    )
    excluded = VertexShape(keyed=False, excluded=("label",))
    assert rows_of(batch, shape=excluded)[0]["instance"] == {"values": [0.1, 0.2], "id": 4}
    included = VertexShape(keyed=False, instance_fields=("values",))
    assert rows_of(batch, shape=included)[0]["instance"] == {"values": [0.1, 0.2]}


def test_a_json_lines_record_keeps_its_own_form_an_array_line_an_array_an_object_line_an_object():
    """The guide's Example 1 (array lines) and Example 2 (object lines), in one file."""
    batch = scored(
        {"values": np.array([[1, 2], [5, 6]], dtype=np.float32)},
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[b"  [1, 2]", b'{"values": [5, 6]}'],
    )
    shape = VertexShape(keyed=False, instance=PER_LINE, array_input="values")
    assert json_lines(rows_of(batch, shape=shape)) == (
        '{"instance":[1,2],"prediction":0.5}\n{"instance":{"values":[5,6]},"prediction":0.25}'
    )


def test_a_listed_files_instance_is_its_uri_not_its_bytes():
    """Vertex AI's file list: the instance written is the file's Cloud Storage URI."""
    batch = scored(
        {"image_bytes": np.array([b"\x89PNG", b"GIF8"], dtype=object)},
        {"score": np.array([0.5, 0.25], np.float32)},
        keys=("gs://b/1.png", "gs://b/2.gif"),
    )
    shape = VertexShape(keyed=False, instance=URI)
    assert rows_of(batch, shape=shape) == [
        {"instance": "gs://b/1.png", "prediction": 0.5},
        {"instance": "gs://b/2.gif", "prediction": 0.25},
    ]
    assert rows_of(batch, shape=shape, as_table=True)[0] == {"instance": "gs://b/1.png", "prediction": "0.5"}


def test_a_tfrecord_records_instance_is_its_bytes_as_a_b64_object_even_where_they_are_text():
    """InstanceConfig: each TFRecord record is converted to {"b64": <value>}."""
    batch = scored(
        {"examples": np.array([b"text", b"\xff"], dtype=object)},
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[b"text", b"\xff"],
    )
    shape = VertexShape(keyed=False, instance=B64)
    assert [row["instance"] for row in rows_of(batch, shape=shape)] == [{"b64": "dGV4dA=="}, {"b64": "/w=="}]
    assert [row["instance"] for row in rows_of(batch, shape=shape, as_table=True)] == ["dGV4dA==", "/w=="]


def test_a_tfrecords_instance_is_the_record_also_where_the_model_takes_a_key_beside_it():
    """An Estimator's or TFX's `examples` and `key` inputs: the record, not a features lookup of one input."""
    batch = scored(
        {"examples": np.array([b"ex1", b"ex2"], dtype=object), "key": np.array([7, 8], np.int64)},
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[b"ex1", b"ex2"],
    )
    shape = VertexShape(keyed=False, instance=B64, key_input=TensorSpec("key", "int64", ()))
    assert [row["instance"] for row in rows_of(batch, shape=shape)] == [{"b64": "ZXgx"}, {"b64": "ZXgy"}]
    assert [row["instance"] for row in rows_of(batch, shape=shape, as_table=True)] == ["ZXgx", "ZXgy"]


def test_a_key_the_model_takes_is_part_of_an_unkeyed_instance():
    """Without keyField, Vertex AI sends the whole object, the field named key with it."""
    key = TensorSpec("key", "int64", ())
    shape = VertexShape(keyed=False, key_input=key)
    batch = scored(
        {"tag": np.array([b"a", b"b"], dtype=object)},
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[b'{"tag": "a", "key": 7}', b'{"tag": "b", "key": -2}'],
    )
    assert rows_of(batch, shape=shape)[0] == {"instance": {"tag": "a", "key": 7}, "prediction": 0.5}
    assert rows_of(batch, shape=shape, inputs=(TAG,), as_table=True)[0] == {"tag": "a", "key": 7, "prediction": "0.5"}
    assert instance_columns((TAG,), shape) == [
        {"name": "tag", "type": "STRING", "mode": "NULLABLE"},
        {"name": "key", "type": "INTEGER", "mode": "NULLABLE"},
    ]


def test_binary_inputs_and_outputs_are_b64_objects_and_bytes_tensors_always():
    batch = scored(
        {"image": np.array([b"\x89PNG", b"GIF8"], dtype=object)},
        {"label": np.array([b"\xff", b"ok"], dtype=object), "mask_bytes": np.array([b"ok", b"ok"], dtype=object)},
        payloads=[b'{"image": {"b64": "iVBORw=="}}', b'{"image": "GIF8"}'],
    )
    mask = TensorSpec("mask_bytes", "string", ())
    rows = rows_of(batch, (LABEL, mask))
    assert rows == [
        {
            "instance": {"image": {"b64": base64.b64encode(b"\x89PNG").decode()}},
            "prediction": {"label": {"b64": "/w=="}, "mask_bytes": {"b64": "b2s="}},
        },
        {"instance": {"image": "GIF8"}, "prediction": {"label": "ok", "mask_bytes": {"b64": "b2s="}}},
    ]


def test_string_keys_are_kept_as_given():
    batch = scored({"tag": np.array([b"a"], dtype=object)}, {"score": np.array([0.5], np.float32)}, keys=("id-1",))
    assert rows_of(batch, shape=KEYED) == [{"key": "id-1", "prediction": 0.5}]


# ------------------------------------------------------------------ vertex_rows as BigQuery rows


def test_keyed_table_rows_hold_the_key_in_place_of_the_instance_columns():
    """keyField: "the output will have a `key` column instead of the instance feature columns"."""
    rows = rows_of(two_instances(), (SCORE, LABEL), KEYED, inputs=(VALUES, TAG), as_table=True)
    assert rows == [
        {"key": 7, "prediction": '{"score":0.1,"label":"cat"}'},
        {"key": -2, "prediction": '{"score":0.7,"label":"dog"}'},
    ]


def test_table_rows_without_a_key_hold_the_instance_columns_then_the_prediction_as_json_text():
    rows = rows_of(two_instances(), inputs=(VALUES, TAG), as_table=True)
    assert rows[0] == {"values": [0.1, 0.2], "tag": "a", "prediction": "0.1"}
    assert list(rows[0]) == ["values", "tag", "prediction"]


def test_an_array_instance_of_fields_is_those_fields_columns_and_of_a_json_array_one_instance_column():
    """A CSV row or a table row made an array keeps its columns (Vertex AI: the instance feature columns)."""
    features = {"values": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)}
    objects = [b'{"bill": 0.1, "mass": 0.2}', b'{"bill": 0.3, "mass": 0.4}']
    batch = scored(features, {"score": np.ones(2, np.float32)}, payloads=objects)
    of_fields = VertexShape(keyed=False, instance=ARRAY, array_input="values", array_fields=("bill", "mass"))
    assert rows_of(batch, shape=of_fields, inputs=(VALUES,), as_table=True) == [
        {"bill": 0.1, "mass": 0.2, "prediction": "1.0"},
        {"bill": 0.3, "mass": 0.4, "prediction": "1.0"},
    ]
    assert instance_columns((VALUES,), of_fields) == [
        {"name": "bill", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "mass", "type": "FLOAT", "mode": "NULLABLE"},
    ]
    of_lines = VertexShape(keyed=False, instance=ARRAY, array_input="values")
    batch = scored(features, {"score": np.ones(2, np.float32)}, payloads=[b"[0.1, 0.2]", b"[0.3, 0.4]"])
    assert rows_of(batch, shape=of_lines, inputs=(VALUES,), as_table=True)[0] == {
        "instance": [0.1, 0.2],
        "prediction": "1.0",
    }
    assert instance_columns((VALUES,), of_lines) == [{"name": "instance", "type": "FLOAT", "mode": "REPEATED"}]


def test_a_matrix_or_binary_input_is_json_text_in_its_column_and_a_bytes_input_is_bytes():
    """BigQuery arrays do not nest, and a BYTES value in {"b64": ...} is not a STRING."""
    batch = scored(
        {
            "grid": np.arange(8, dtype=np.int64).reshape(2, 2, 2),
            "image": np.array([b"\xff", b"png"], dtype=object),
            "raw_bytes": np.array([b"ok", b"\xfe"], dtype=object),
        },
        {"score": np.array([0.5, 0.25], np.float32)},
        payloads=[
            b'{"grid": [[0, 1], [2, 3]], "image": {"b64": "/w=="}, "raw_bytes": {"b64": "b2s="}}',
            b'{"grid": [[4, 5], [6, 7]], "image": "png", "raw_bytes": {"b64": "/g=="}}',
        ],
    )
    inputs = (
        TensorSpec("grid", "int64", (2, 2)),
        TensorSpec("image", "string", ()),
        TensorSpec("raw_bytes", "string", ()),
    )
    rows = rows_of(batch, inputs=inputs, as_table=True)
    assert rows == [
        {"grid": "[[0,1],[2,3]]", "image": '{"b64":"/w=="}', "raw_bytes": "b2s=", "prediction": "0.5"},
        {"grid": "[[4,5],[6,7]]", "image": "png", "raw_bytes": "/g==", "prediction": "0.25"},
    ]
    assert [column["type"] for column in instance_columns(inputs, UNKEYED)] == ["STRING", "STRING", "BYTES"]


def test_a_text_vector_input_is_one_json_text_column_so_binary_values_fit():
    """A REPEATED STRING column could not hold {"b64": ...}; JSON text holds text and binary alike."""
    tags = np.empty(2, dtype=object)
    tags[0] = np.array([b"ok", b"\xff"], dtype=object)
    tags[1] = np.array([b"\xfe"], dtype=object)
    payloads = [b'{"tags": ["ok", {"b64": "/w=="}]}', b'{"tags": [{"b64": "/g=="}]}']
    batch = scored({"tags": tags}, {"score": np.array([0.5, 0.25], np.float32)}, payloads=payloads)
    tags_spec = TensorSpec("tags", "string", (None,))
    (column,) = vertex_schema((tags_spec,), None, UNKEYED)["fields"][:1]
    assert column == {"name": "tags", "type": "STRING", "mode": "NULLABLE"}
    rows = rows_of(batch, inputs=(tags_spec,), as_table=True)
    assert [row["tags"] for row in rows] == ['["ok",{"b64":"/w=="}]', '[{"b64":"/g=="}]']


# ------------------------------------------------------------------ vertex_schema


def test_the_schema_is_the_inputs_by_dtype_and_shape_then_prediction_as_json_text():
    inputs = (
        TensorSpec("count", "int64", ()),
        TensorSpec("flag", "bool", ()),
        TensorSpec("tag", "string", ()),
        TensorSpec("values", "float32", (None,)),
        TensorSpec("ids", "uint8", (3,)),
        TensorSpec("grid", "float32", (2, 2)),
        TensorSpec("half", "float16", ()),
    )
    assert vertex_schema(inputs, None, UNKEYED) == {
        "fields": [
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


def test_a_keyed_schema_is_the_key_and_the_prediction():
    assert vertex_schema((VALUES, TAG), "STRING") == {
        "fields": [
            {"name": "key", "type": "STRING", "mode": "NULLABLE"},
            {"name": "prediction", "type": "STRING", "mode": "NULLABLE"},
        ]
    }


@pytest.mark.parametrize(
    ("instance", "column"),
    [
        (URI, {"name": "instance", "type": "STRING", "mode": "NULLABLE"}),
        (B64, {"name": "instance", "type": "BYTES", "mode": "NULLABLE"}),
    ],
)
def test_a_file_list_or_tfrecord_instance_is_one_instance_column(instance, column):
    shape = VertexShape(keyed=False, instance=instance)
    assert vertex_schema((TensorSpec("examples", "string", ()),), None, shape)["fields"][0] == column


def test_rank_two_or_more_inputs_are_string_json_columns():
    inputs = (TensorSpec("image", "float32", (2, 2, 3)), TensorSpec("words", "string", (None, None)))
    fields = vertex_schema(inputs, None, VertexShape(keyed=False, instance=OBJECT))["fields"]
    assert [(field["name"], field["type"], field["mode"]) for field in fields] == [
        ("image", "STRING", "NULLABLE"),
        ("words", "STRING", "NULLABLE"),
        ("prediction", "STRING", "NULLABLE"),
    ]


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
        ("prediction", "STRING"),
        (MODEL_VERSION, "INTEGER"),
    ]


def test_a_vertex_layout_without_a_key_field_given_writes_the_instance_even_where_records_are_keyed():
    """Vertex AI writes `key` only where keyField is set; the layout's shape says whether it was."""
    layout = RowLayout((SCORE,), key_kind=KEY_INT, shape=VERTEX, inputs=(TAG,), vertex=UNKEYED)
    batch = scored({"tag": np.array([b"a", b"b"], dtype=object)}, {"score": np.array([0.1, 0.7], dtype=np.float32)})
    assert layout.rows(batch)[0][0] == {"instance": {"values": [0.1, 0.2], "tag": "a"}, "prediction": 0.1}
    assert [field["name"] for field in layout.schema()["fields"]] == ["tag", "prediction"]


def test_a_vertex_layouts_dead_letters_follow_its_shape_and_columns():
    keyed = RowLayout((SCORE,), key_kind=KEY_INT, shape=VERTEX, inputs=(TAG,))
    letter = DeadLetter(
        "in.jsonl", b'{"key": 4, "tag": 1}', Reason.WRONG_TYPE, "field 'tag' is 1", position="in.jsonl:2"
    )
    assert keyed.dead_letter_row(letter, as_table=False) == {
        "key": 4,
        "error": {"code": 3, "message": "wrong_type: field 'tag' is 1 (in.jsonl:2)"},
    }
    assert keyed.dead_letter_schema()["fields"][0] == {"name": "key", "type": "INTEGER", "mode": "NULLABLE"}
    unkeyed = RowLayout((SCORE,), key_kind=KEY_POSITION, shape=VERTEX, inputs=(TAG,))
    assert [field["name"] for field in unkeyed.dead_letter_schema()["fields"]] == ["tag", "errors"]
    assert unkeyed.dead_letter_row(letter, as_table=True)["tag"] == "1"


def test_a_vertex_layouts_included_value_that_does_not_fit_its_column_is_a_dead_letter():
    layout = RowLayout((SCORE,), key_kind=KEY_POSITION, included=(("year", "INTEGER"),), shape=VERTEX, inputs=(TAG,))
    batch = scored(
        {"tag": np.array([b"a", b"b"], dtype=object)},
        {"score": np.array([0.1, 0.7], dtype=np.float32)},
        included=[{"year": 2007}, {"year": "soon"}],
    )
    rows, letters = layout.rows(batch)
    assert rows == [{"instance": {"values": [0.1, 0.2], "tag": "a"}, "prediction": 0.1, "year": 2007}]
    assert [(item.payload, item.reason) for item in letters] == [(PAYLOADS[1], Reason.WRONG_TYPE)]


def test_vertex_rows_are_written_as_json_lines_with_float32_in_its_shortest_decimal():
    layout = RowLayout((SCORE, LABEL), shape=VERTEX, inputs=(VALUES, TAG))  # keyed: a key field was given
    rows, _ = layout.rows(two_instances())
    assert json_lines(rows) == (
        '{"key":7,"prediction":{"score":0.1,"label":"cat"}}\n{"key":-2,"prediction":{"score":0.7,"label":"dog"}}'
    )
