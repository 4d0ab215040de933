"""JSON Lines records fed by input name, per record."""

from __future__ import annotations

import json

import numpy as np

from pipeline.data.batches import RecordBatch
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import decode


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
