"""Whole files (PNG, JPEG, ...): each file is one instance, its bytes fed to the model's one
tf.string input (the model decodes them), its path the key."""

from __future__ import annotations

import numpy as np

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.decoders.base import Decoded
from pipeline.data.instances import Feeding


class WholeFilesDecoder:
    def __init__(self, feeding: Feeding):
        (self._input,) = feeding.inputs

    def decode(self, batch: RecordBatch) -> Decoded:
        count = len(batch.payloads)
        keys = np.array([batch.position_of(index) for index in range(count)], dtype=object)
        features = {self._input.name: np.array(batch.payloads, dtype=object)}
        return Decoded([InstanceBatch(keys, features, batch, np.arange(count, dtype=np.int64))])
