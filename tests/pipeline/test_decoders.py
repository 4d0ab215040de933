"""Decoders: records of each format into instances typed by the signature, and the vectorised
Arrow paths of JSON Lines and CSV, which must give exactly what the per-record path gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.batches import RecordBatch, RowBatch
from pipeline.decoders import BIGQUERY_KEY_VALUES, BIGQUERY_ROWS, decoder_for
from pipeline.decoders.arrow_columns import csv_instances, json_instances
from pipeline.decoders.csv_typing import split_csv_line, typed
from pipeline.instances import KEY_INT, KEY_POSITION, KEY_STR, Feeding
from pipeline.signatures import TensorSpec

TABULAR = (
    TensorSpec("island", "string", ()),
    TensorSpec("length", "float32", ()),
    TensorSpec("count", "int64", ()),
    TensorSpec("vector", "float32", (2,)),
)
FEEDING = Feeding(TABULAR, "key", KEY_INT)


def decode(record_format: str, batch, feeding: Feeding = FEEDING):
    return decoder_for(record_format, feeding).decode(batch)


def test_split_csv_line_follows_rfc_4180_quoting_and_says_what_was_quoted():
    assert split_csv_line('1,"a, b",  2.5 ,"say ""hi""",') == [
        ("1", False),
        ("a, b", True),
        ("2.5", False),
        ('say "hi"', True),
        ("", False),
    ]
    assert split_csv_line('1,"never closed') is None
    assert split_csv_line('1,a"b') is None
    assert [typed(*field) for field in split_csv_line('7,-1.5e3,"7",x,')] == [7, -1500.0, "7", "x", None]


def test_jsonl_feeds_inputs_by_name_and_rejects_with_the_field_named():
    lines = [
        {"key": 1, "island": "Dream", "length": 40.5, "count": 2, "vector": [1, 2], "extra": True},
        {"key": 2, "island": "Biscoe", "length": "40.5", "count": 2, "vector": [1, 2]},
        {"key": 3, "island": "Biscoe", "length": 40.5, "count": 2, "vector": [1, 2, 3]},
        {"key": 4, "island": "Biscoe", "length": 40.5, "count": 2.5, "vector": [1, 2]},
        {"key": 5, "island": {"b64": "RHJlYW0="}, "length": 1e39, "count": 2, "vector": [1, 2]},
        {"key": 6, "length": 1.0, "count": 2, "vector": [1, 2]},
    ]
    batch = RecordBatch("in.jsonl", 1, [json.dumps(line).encode() for line in lines])
    decoded = decode("jsonl", batch)
    (instances,) = decoded.instances
    assert instances.keys.tolist() == [1]
    assert instances.features["island"].tolist() == [b"Dream"]
    assert instances.features["vector"].dtype == np.float32 and instances.features["count"].dtype == np.int64
    reasons = [(json.loads(letter.payload)["key"], letter.reason, letter.message) for letter in decoded.dead_letters]
    assert reasons == [
        (2, "wrong_type", "field 'length': '40.5' is not finite float32 numbers"),
        (3, "wrong_shape", "field 'vector' has shape (3,), the model takes (2,)"),
        (4, "wrong_type", "field 'count': 2.5 is not finite int64 numbers"),
        (5, "wrong_type", "field 'length': 1e+39 is not finite float32 numbers"),
        (6, "missing_field", "no field 'island'"),
    ]


def test_none_dimensions_take_any_size_and_instances_of_different_sizes_are_batched_apart():
    feeding = Feeding((TensorSpec("sequence", "float32", (None,)),), "key", KEY_INT)
    lines = [json.dumps({"key": key, "sequence": [0.5] * (1 + key % 2)}).encode() for key in range(5)]
    decoded = decode("jsonl", RecordBatch("in.jsonl", 1, lines), feeding)
    shapes = sorted((batch.features["sequence"].shape, batch.keys.tolist()) for batch in decoded.instances)
    assert shapes == [((2, 2), [1, 3]), ((3, 1), [0, 2, 4])]


def test_csv_typing_by_vertex_ais_rule():
    header = b"key,island,length,count,vector"
    feeding = Feeding(TABULAR[:3], "key", KEY_INT)
    lines = [b'1,"Dream",40.5,2,x', b"2,Dream,40.5,2,x", b'3,"Dream","40.5",2,x', b"4,Dream,40.5", b"5,Dream,,2,x"]
    decoded = decode("csv", RecordBatch("in.csv", 2, lines, header=header), feeding)
    assert [batch.keys.tolist() for batch in decoded.instances] == [[1, 2]]
    assert [(letter.payload[:1], letter.reason) for letter in decoded.dead_letters] == [
        (b"3", "wrong_type"),
        (b"4", "bad_csv"),
        (b"5", "missing_field"),
    ]


def test_tfrecord_records_are_bytes_keyed_by_a_feature_or_their_index():
    from tests.model_factories import serialized_example

    payloads = [serialized_example([1.0, 2.0], id=7), b"not an example"]
    feeding = Feeding((TensorSpec("examples", "string", ()),), "id", KEY_INT)
    decoded = decode("tfrecord", RecordBatch("a.tfrecord", 0, payloads), feeding)
    (instances,) = decoded.instances
    assert instances.keys.tolist() == [7] and instances.features["examples"].tolist() == payloads[:1]
    assert [letter.reason for letter in decoded.dead_letters] == ["not_an_example"]
    by_position = Feeding(feeding.inputs, "id", KEY_POSITION)
    (instances,) = decode("tfrecord", RecordBatch("a.tfrecord", 5, payloads), by_position).instances
    assert instances.keys.tolist() == ["a.tfrecord:5", "a.tfrecord:6"]


def test_whole_files_are_keyed_by_their_paths():
    feeding = Feeding((TensorSpec("image_bytes", "string", ()),), "key", KEY_POSITION)
    batch = RecordBatch("", 0, [b"\x89PNG...", b"GIF89a"], origins=("gs://b/a.png", "gs://b/b.gif"))
    (instances,) = decode("files", batch, feeding).instances
    assert instances.keys.tolist() == ["gs://b/a.png", "gs://b/b.gif"]
    assert instances.features["image_bytes"].tolist() == [b"\x89PNG...", b"GIF89a"]


def test_table_rows_feed_by_column_and_the_seeds_rows_as_its_lines():
    feeding = Feeding(TABULAR[:3], "key", KEY_STR)
    rows = [
        {"key": "a", "island": "Dream", "length": 1.5, "count": 3},
        {"key": "b", "island": None, "length": 1.0, "count": 1},
    ]
    decoded = decode(BIGQUERY_ROWS, RowBatch("p:d.t", rows), feeding)
    assert decoded.instances[0].keys.tolist() == ["a"]
    assert [(letter.origin, letter.reason) for letter in decoded.dead_letters] == [("p:d.t", "missing_field")]
    seed = Feeding((TensorSpec("image", "float32", (2, 2, 1)),), "key", KEY_INT)
    seed_rows = [{"key": 4, "image": "0,0.5,1,0"}, {"key": 5, "image": None}, {"key": 6, "image": "1,2"}]
    decoded = decode(BIGQUERY_KEY_VALUES, RowBatch("p:d.images", seed_rows), seed)
    assert decoded.instances[0].keys.tolist() == [4] and decoded.instances[0].features["image"].shape == (1, 2, 2, 1)
    assert sorted(letter.reason for letter in decoded.dead_letters) == ["null_field", "wrong_value_count"]


def test_the_seeds_rows_carry_their_included_columns():
    seed = Feeding((TensorSpec("image", "float32", (2,)),), "key", KEY_INT, included_fields=("label", "batch"))
    rows = [
        {"key": 4, "image": "0,0.5", "label": 7, "batch": "a"},
        {"key": 5, "image": "1", "label": 1, "batch": "b"},  # too few values: a dead letter
        {"key": 6, "image": "1,2", "label": None, "batch": "c"},
    ]
    (instances,) = decode(BIGQUERY_KEY_VALUES, RowBatch("p:d.images", rows), seed).instances
    assert instances.keys.tolist() == [4, 6]
    assert instances.included == [{"label": 7, "batch": "a"}, {"label": None, "batch": "c"}]


# The vectorised Arrow paths against the per-record path, on records drawn to be well-formed or not.

islands = st.sampled_from(["Dream", "Biscoe", "Torgersen", "", "a,b", 'say "x"', "7", " Dream ", "true"])
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
odd_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from(["1.5", "", "NA", "x", None, True])
)
well_formed = st.fixed_dictionaries(
    {
        "key": st.integers(0, 2**62),
        "island": islands,
        "length": st.one_of(finite, st.integers(-(10**6), 10**6)),
        "count": st.integers(-(10**6), 10**6),
        "vector": st.lists(finite, min_size=2, max_size=2),
        "note": st.one_of(st.integers(-5, 5), finite, st.sampled_from(["x", "2024-01-01", " 7 ", True, None])),
    }
)
damaged = st.fixed_dictionaries(
    {"key": st.one_of(st.integers(0, 10**9), st.sampled_from(["k", None])), "island": st.one_of(islands, st.none())},
    optional={"length": odd_numbers, "count": odd_numbers, "vector": st.lists(odd_numbers, max_size=3)},
)
# Mostly well-formed records, so that the vectorised paths are taken, with the odd damaged one.
records = st.one_of(well_formed, well_formed, well_formed, damaged)


def per_record(feeding: Feeding, batch: RecordBatch, record_format: str):
    """The per-record path alone, as the decoder takes it when Arrow returns None."""
    decoder = decoder_for(record_format, feeding)
    from pipeline.decoders import csv_lines, json_lines

    fast = (json_lines, "json_instances") if record_format == "jsonl" else (csv_lines, "csv_instances")
    original = getattr(*fast)
    setattr(fast[0], fast[1], lambda *args: None)
    try:
        return decoder.decode(batch)
    finally:
        setattr(fast[0], fast[1], original)


def same_instances(fast, slow) -> None:
    assert not slow.dead_letters, "the fast path kept a record the per-record path rejects"
    (expected,) = slow.instances
    assert fast.keys.tolist() == expected.keys.tolist()
    assert fast.included == expected.included
    for name, array in expected.features.items():
        got = fast.features[name]
        if array.dtype == object:
            assert [value if isinstance(value, bytes) else value.encode() for value in got] == array.tolist()
        else:
            assert got.dtype == array.dtype
            np.testing.assert_array_equal(got, array)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=6))
def test_arrow_json_lines_equal_the_per_record_path(rows):
    feeding = Feeding(TABULAR, "key", KEY_INT, included_fields=("note", "island"))
    batch = RecordBatch("in.jsonl", 1, [json.dumps(row).encode() for row in rows])
    fast = json_instances(feeding, batch)
    if fast is not None:
        same_instances(fast, per_record(feeding, batch, "jsonl"))


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value and "," not in value and '"' not in value else '"' + value.replace('"', '""') + '"'
    return repr(value) if isinstance(value, float) else str(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=6))
def test_arrow_csv_equals_the_per_record_path(rows):
    feeding = Feeding(TABULAR[:3], "key", KEY_INT, included_fields=("note", "island"))
    names = ["key", "island", "length", "count", "note"]
    lines = [",".join(csv_cell(row.get(name)) for name in names).encode() for row in rows]
    batch = RecordBatch("in.csv", 2, lines, header=",".join(names).encode())
    fast = csv_instances(feeding, batch)
    if fast is not None:
        same_instances(fast, per_record(feeding, batch, "csv"))


@pytest.mark.parametrize("record_format", ["jsonl", "csv"])
def test_the_arrow_paths_take_the_penguins_sample(record_format):
    from tests.conftest import SAMPLES

    lines = (SAMPLES / f"penguins/penguins.{record_format}").read_bytes().splitlines()
    header, payloads = (lines[0], lines[1:]) if record_format == "csv" else (None, lines)
    feeding = Feeding(
        (
            TensorSpec("island", "string", ()),
            TensorSpec("sex", "string", ()),
            *(TensorSpec(name, "float32", ()) for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm")),
            TensorSpec("body_mass_g", "float32", ()),
        ),
        "key",
        KEY_INT,
        included_fields=("species",),
    )
    batch = RecordBatch(f"penguins.{record_format}", 1, payloads, header=header)
    fast = (json_instances if record_format == "jsonl" else csv_instances)(feeding, batch)
    assert fast is not None and len(fast) == 333
    assert fast.included[0] == {"species": "Adelie"}
    same_instances(fast, per_record(feeding, batch, record_format))
