"""Launch-time plans: what the prediction table holds, refused where two columns would share a name."""

from __future__ import annotations

import pytest

from pipeline.data.formats import CSV, FILES, JSONL, KEY_VALUES, TFRECORD
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding
from pipeline.data.rows import VERTEX
from pipeline.data.vertex_rows import B64, OBJECT, PER_LINE, URI
from pipeline.errors import ModelError
from pipeline.launch.feeding import row_layout, vertex_shape
from pipeline.launch.instance_options import ARRAY, InstanceOptions
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec
from tests.conftest import ROOT

SCORES = TensorSpec("scores", "float32", (3,))
SIGNATURE = ModelSignature(ModelFormat.SAVED_MODEL, (TensorSpec("x", "float32", (4,)),), (SCORES,), "gs://b/model")


def feeding(*included: str) -> Feeding:
    return Feeding(SIGNATURE.inputs, "key", KEY_INT, included_fields=included)


def test_included_fields_follow_the_prediction_columns():
    plan = row_layout(SIGNATURE, feeding("island", "note"), {"island": "STRING"})
    names = [field["name"] for field in plan.schema()["fields"]]
    assert names == ["key", "prediction", "confidence", "pred0", "pred1", "pred2", "island", "note"]


@pytest.mark.parametrize("clash", ["key", "prediction", "Confidence", "pred2"])
def test_an_included_field_named_like_a_prediction_column_is_refused(clash):
    with pytest.raises(ModelError, match=f"--included_fields: {clash} would overwrite"):
        row_layout(SIGNATURE, feeding(clash), {})


# ------------------------------------------------------------------ Vertex AI's shape

VALUES = TensorSpec("values", "float32", (4,))
EXAMPLES = TensorSpec("examples", "string", ())
KEY = TensorSpec("key", "int64", ())
VERTEX_OPTIONS = InstanceOptions(output_shape=VERTEX)


@pytest.mark.parametrize(
    ("record_format", "inputs", "options", "instance", "array_input"),
    [
        (FILES, (EXAMPLES,), VERTEX_OPTIONS, URI, None),  # a listed file: its URI
        (TFRECORD, (EXAMPLES,), VERTEX_OPTIONS, B64, None),  # a record: {"b64": ...}
        (JSONL, (VALUES,), VERTEX_OPTIONS, PER_LINE, "values"),  # each line's own form
        (JSONL, (VALUES, EXAMPLES), VERTEX_OPTIONS, OBJECT, None),  # objects: no single input to fill
        (CSV, (VALUES,), InstanceOptions(instance_type=ARRAY, output_shape=VERTEX), ARRAY, "values"),
        (CSV, (VALUES, EXAMPLES), InstanceOptions(instance_type="object", output_shape=VERTEX), OBJECT, None),
        (KEY_VALUES, (VALUES,), VERTEX_OPTIONS, ARRAY, "values"),
    ],
)
def test_the_instance_is_what_vertex_ai_writes_for_each_format(record_format, inputs, options, instance, array_input):
    shape = vertex_shape(Feeding(inputs, "key", KEY_POSITION), options, record_format)
    assert (shape.instance, shape.array_input) == (instance, array_input)


def test_message_bodies_are_b64_instances_not_uris():
    shape = vertex_shape(Feeding((EXAMPLES,), "key", KEY_POSITION), VERTEX_OPTIONS, FILES, from_messages=True)
    assert shape.instance == B64


def test_the_key_replaces_the_instance_only_where_a_key_field_was_given_or_the_lines_have_their_own():
    named = Feeding((VALUES,), "key", KEY_INT)
    assert vertex_shape(named, VERTEX_OPTIONS, JSONL).keyed is False
    assert vertex_shape(named, InstanceOptions(output_shape=VERTEX, key_given=True), JSONL).keyed is True
    assert vertex_shape(named, VERTEX_OPTIONS, KEY_VALUES).keyed is True  # key:v0,v1,... is not Vertex AI's


def test_an_unkeyed_instance_holds_the_key_a_model_takes_and_the_options_read_back_errors():
    feeding = Feeding((VALUES,), "key", KEY_INT, key_input=KEY)
    options = InstanceOptions(excluded=("note",), output_shape=VERTEX, error_status=True)
    shape = vertex_shape(feeding, options, CSV, ("key", "a", "note"))
    assert (shape.key_input, shape.excluded, shape.error_status, shape.csv_header) == (
        KEY,
        ("note",),
        True,
        ("key", "a", "note"),
    )
    assert vertex_shape(feeding, options, JSONL, ("ignored",)).csv_header == ()


def test_a_vertex_layout_carries_the_shape_and_the_inputs():
    options = InstanceOptions(output_shape=VERTEX)
    named = Feeding(SIGNATURE.inputs, "key", KEY_POSITION)
    plan = row_layout(SIGNATURE, named, {}, options, vertex_shape(named, options, JSONL))
    assert (plan.shape, plan.inputs, plan.vertex.instance) == (VERTEX, SIGNATURE.inputs, PER_LINE)
    assert [field["name"] for field in plan.schema()["fields"]] == ["x", "prediction"]


def test_a_json_array_lines_instance_fills_the_column_of_the_models_one_input_in_bigquery():
    """JSON Lines' default shape (each line's own form) in a table: an array line is the object of the model's
    one input it stands for, in that input's column (REPEATED FLOAT here), not an `instance` column."""
    import numpy as np

    from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
    from pipeline.data.vertex_rows import instance_columns

    named = Feeding((VALUES,), "key", KEY_POSITION)
    shape = vertex_shape(named, VERTEX_OPTIONS, JSONL)
    assert instance_columns((VALUES,), shape) == [{"name": "values", "type": "FLOAT", "mode": "REPEATED"}]
    signature = ModelSignature(ModelFormat.SAVED_MODEL, (VALUES,), (TensorSpec("score", "float32", ()),), "gs://m")
    layout = row_layout(signature, named, {}, VERTEX_OPTIONS, shape)
    source = RecordBatch("in.jsonl", 1, [b"[1, 2, 3, 4]", b'{"values": [5, 6, 7, 8]}'])
    features = {"values": np.arange(1, 9, dtype=np.float32).reshape(2, 4)}
    instances = InstanceBatch(np.array(["in.jsonl:1", "in.jsonl:2"], dtype=object), features, source, np.arange(2))
    rows, _ = layout.rows(ScoredBatch(instances, {"score": np.array([0.5, 0.25], np.float32)}), as_table=True)
    assert rows == [
        {"values": [1.0, 2.0, 3.0, 4.0], "prediction": "0.5"},
        {"values": [5.0, 6.0, 7.0, 8.0], "prediction": "0.25"},
    ]
    doc = " ".join((ROOT / "docs" / "vertex-ai.md").read_text().split())
    assert "An array line (JSON Lines' default form) fills the column of the model's one input" in doc
