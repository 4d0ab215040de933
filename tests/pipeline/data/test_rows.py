"""Output rows and their BigQuery schema, from the signature: the classifier contract, one field per
output otherwise, included fields, and the instances that make no row."""

from __future__ import annotations

import base64

import numpy as np
import orjson

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import Reason
from pipeline.data.instances import KEY_INT, KEY_STR
from pipeline.data.rows import RowLayout, classes_of, json_lines
from pipeline.model.signatures import TensorSpec


def scored(outputs: dict[str, np.ndarray], keys=(7, -2), included=None) -> ScoredBatch:
    source = RecordBatch("in.jsonl", 1, [b'{"a": 1}', b'{"a": 2}', b'{"a": 3}'][: len(keys)])
    instances = InstanceBatch(np.array(keys), {}, source, np.arange(len(keys)), included)
    return ScoredBatch(instances, outputs)


SCORES = TensorSpec("scores", "float32", (3,))


def test_one_float_batch_by_classes_output_keeps_the_2017_contract():
    plan = RowLayout((SCORES,))
    batch = scored({"scores": np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], dtype=np.float32)})
    rows, letters = plan.rows(batch)
    assert rows[0] == {"key": 7, "prediction": 1, "confidence": 0.7, "pred0": 0.1, "pred1": 0.7, "pred2": 0.2}
    assert rows[1]["key"] == -2 and rows[1]["prediction"] == 0 and letters == []
    assert [orjson.loads(line) for line in json_lines(rows).splitlines()] == rows
    assert [(field["name"], field["type"]) for field in plan.schema()["fields"]] == [
        ("key", "INTEGER"),
        ("prediction", "INTEGER"),
        ("confidence", "FLOAT"),
        ("pred0", "FLOAT"),
        ("pred1", "FLOAT"),
        ("pred2", "FLOAT"),
    ]


def test_any_other_signature_gets_one_field_per_output():
    outputs = (
        TensorSpec("price", "float32", ()),
        TensorSpec("embedding", "float32", (None,)),
        TensorSpec("grid", "int64", (2, 2)),
        TensorSpec("label", "string", ()),
        TensorSpec("thumbnail_bytes", "string", ()),
    )
    assert classes_of(outputs) is None and classes_of((TensorSpec("p", "float32", (1,)),)) is None
    plan = RowLayout(outputs, key_field="id", key_kind=KEY_STR, included=(("city", "STRING"),))
    batch = scored(
        {
            "price": np.array([1.5, 2.25], dtype=np.float32),
            "embedding": np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32),
            "grid": np.arange(8, dtype=np.int64).reshape(2, 2, 2),
            "label": np.array([b"cat", b"chien"], dtype=object),
            "thumbnail_bytes": np.array([b"\xff\x00", b"\x01"], dtype=object),
        },
        keys=np.array(["a", "b"], dtype=object),
        included=[{"city": "Oslo"}, {"city": None}],
    )
    rows, letters = plan.rows(batch)
    assert letters == []
    assert rows[0] == {
        "id": "a",
        "price": 1.5,
        "embedding": [0.1, 0.2],
        "grid": "[[0,1],[2,3]]",
        "label": "cat",
        "thumbnail_bytes": base64.b64encode(b"\xff\x00").decode(),
        "city": "Oslo",
    }
    assert rows[1]["city"] is None
    assert [(field["name"], field["type"], field["mode"]) for field in plan.schema()["fields"]] == [
        ("id", "STRING", "REQUIRED"),
        ("price", "FLOAT", "REQUIRED"),
        ("embedding", "FLOAT", "REPEATED"),
        ("grid", "STRING", "REQUIRED"),
        ("label", "STRING", "REQUIRED"),
        ("thumbnail_bytes", "BYTES", "REQUIRED"),
        ("city", "STRING", "NULLABLE"),
    ]


def test_non_finite_or_undecodable_outputs_become_dead_letters_and_their_batch_mates_rows():
    plan = RowLayout((TensorSpec("value", "float32", (2,)), TensorSpec("label", "string", ())), key_kind=KEY_INT)
    batch = scored(
        {
            "value": np.array([[0.5, 1.0], [np.nan, 1.0], [0.25, 0.5]], dtype=np.float32),
            "label": np.array([b"ok", b"ok", b"\xff"], dtype=object),
        },
        keys=(1, 2, 3),
    )
    kept, letters = plan.split(batch)
    assert kept.instances.keys.tolist() == [1]
    assert [(letter.payload, letter.reason) for letter in letters] == [
        (b'{"a": 2}', Reason.NON_FINITE_SCORE),
        (b'{"a": 3}', Reason.UNENCODABLE_OUTPUT),
    ]
    assert "output 'value'" in letters[0].message and "label_bytes" in letters[1].message
    whole = scored({"value": np.ones((2, 2), np.float32), "label": np.array([b"a", b"b"], dtype=object)})
    assert plan.split(whole) == (whole, [])


def test_an_included_value_that_does_not_fit_its_column_is_a_dead_letter():
    plan = RowLayout((SCORES,), included=(("count", "INTEGER"),))
    batch = scored({"scores": np.full((2, 3), 1 / 3, dtype=np.float32)}, included=[{"count": 4}, {"count": "four"}])
    rows, letters = plan.rows(batch)
    assert [row["count"] for row in rows] == [4]
    assert [(letter.payload, letter.reason) for letter in letters] == [(b'{"a": 2}', Reason.WRONG_TYPE)]


def test_an_included_integer_beyond_64_bits_is_a_dead_letter_of_its_record_not_of_the_sink():
    plan = RowLayout((SCORES,), included=(("count", "INTEGER"),))
    counts = [2**63 - 1, 2**63, -(2**63) - 1]
    batch = scored(
        {"scores": np.full((3, 3), 1 / 3, dtype=np.float32)}, keys=(1, 2, 3), included=[{"count": c} for c in counts]
    )
    rows, letters = plan.rows(batch, as_table=True)
    assert [row["count"] for row in rows] == [2**63 - 1]
    assert [(letter.payload, letter.position, letter.reason) for letter in letters] == [
        (b'{"a": 2}', "in.jsonl:2", Reason.WRONG_TYPE),
        (b'{"a": 3}', "in.jsonl:3", Reason.WRONG_TYPE),
    ]
    assert letters[0].message == "included field value 9223372036854775808 does not fit its INTEGER column"
