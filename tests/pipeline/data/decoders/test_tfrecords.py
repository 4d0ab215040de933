"""TFRecord records: bytes for one tf.string input, keyed by a feature or their index."""

from __future__ import annotations

from pipeline.data.batches import RecordBatch
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding
from pipeline.model.signatures import TensorSpec
from tests.pipeline.data.decoders.tabular import decode


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
