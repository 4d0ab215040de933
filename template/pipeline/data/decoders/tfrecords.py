"""TFRecord: each record a serialized tf.train.Example, fed as bytes to a model whose serving input
is one tf.string tensor (the TFX / Estimator export convention: the model parses the Example).

The key, and any included fields, are read from the Example's features of those names when the
job is keyed by a field; otherwise a record's key is file:index.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding, key_feed, record_key


def example_fields(payload: bytes, names: tuple[str, ...]) -> dict[str, object] | Rejection:
    """The named features of a serialized Example, as Python values (a single value unwrapped)."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    try:
        example.ParseFromString(payload)
    except Exception as error:  # protobuf's DecodeError
        return Rejection(Reason.NOT_AN_EXAMPLE, f"not a serialized tf.train.Example: {error}")
    fields: dict[str, object] = {}
    for name in names:
        if name not in example.features.feature:
            continue
        feature = example.features.feature[name]
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        fields[name] = values[0] if len(values) == 1 else values
    return fields


class TfRecordDecoder:
    def __init__(self, feeding: Feeding):
        (self._input,) = feeding.inputs
        self._feeding = feeding
        self._fields = (() if feeding.key_kind == KEY_POSITION else (feeding.key_field,)) + feeding.included_fields

    def decode(self, batch: RecordBatch) -> Decoded:
        keys, positions, included, rejections = [], [], [], []
        for position, payload in enumerate(batch.payloads):
            fields = example_fields(payload, self._fields) if self._fields else {}
            if isinstance(fields, Rejection):
                rejections.append((position, fields))
                continue
            key = record_key(self._feeding, batch, position, fields, what="feature")
            if isinstance(key, Rejection):
                rejections.append((position, key))
                continue
            keys.append(key)
            positions.append(position)
            included.append({name: fields.get(name) for name in self._feeding.included_fields})
        if not keys:
            return Decoded([], dead_letters(batch, rejections))
        key_array = np.array(keys, dtype=np.int64 if self._feeding.key_kind == KEY_INT else object)
        features = {self._input.name: np.array([batch.payloads[position] for position in positions], dtype=object)}
        if self._feeding.key_input is not None:
            features[self._feeding.key_input.name] = key_feed(key_array, self._feeding.key_input)
        instances = InstanceBatch(
            key_array,
            features,
            batch,
            np.array(positions, dtype=np.int64),
            included if self._feeding.included_fields else None,
        )
        return Decoded([instances], dead_letters(batch, rejections))
