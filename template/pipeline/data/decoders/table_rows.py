"""BigQuery rows, their columns fed to the signature's inputs by name (shape them with `query`)."""

from __future__ import annotations

from pipeline.data.batches import RowBatch
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.instances import Feeding, InstanceBuilder


class TableRowsDecoder:
    def __init__(self, feeding: Feeding):
        self._feeding = feeding

    def decode(self, batch: RowBatch) -> Decoded:
        builder = InstanceBuilder(self._feeding, batch)
        for position, row in enumerate(batch.rows):
            builder.add(position, row)
        return Decoded(builder.batches(), dead_letters(batch, builder.rejections))
