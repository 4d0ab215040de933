"""The 2017 sample's `key:v0,v1,...` lines (and its `key INTEGER, image STRING` table rows): the
fast path, parsed a batch at a time by `records.parse_lines`."""

from __future__ import annotations

import dataclasses

from pipeline.data.batches import InstanceBatch, RecordBatch, RowBatch
from pipeline.data.dead_letters import Rejection
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.instances import Feeding, key_feed
from pipeline.data.seed_lines import parse_lines, row_to_line


class KeyValuesDecoder:
    """Lines into one float input of a fully known shape (and the keys, where the model takes them)."""

    def __init__(self, feeding: Feeding):
        (self._image,) = feeding.inputs
        if self._image.size is None:
            raise ValueError(f"input '{self._image.name}' has no fully known shape: key_values records cannot fill it")
        self._width: int = self._image.size
        self._key_input = feeding.key_input

    def decode(self, batch: RecordBatch) -> Decoded:
        parsed = parse_lines(batch.payloads, self._width)
        rejected = dead_letters(batch, parsed.rejections)
        if not len(parsed.keys):
            return Decoded([], rejected)
        images = parsed.images.reshape(-1, *self._image.shape)
        features = {self._image.name: images if images.dtype == self._image.dtype else images.astype(self._image.dtype)}
        if self._key_input is not None:
            features[self._key_input.name] = key_feed(parsed.keys, self._key_input)
        return Decoded([InstanceBatch(parsed.keys, features, batch, parsed.positions)], rejected)


class KeyValuesRowsDecoder:
    """`key INTEGER, image STRING` rows, decoded as the lines they were loaded from; the fields
    named in `included_fields` ride along to the output rows."""

    def __init__(self, feeding: Feeding):
        self._lines = KeyValuesDecoder(feeding)
        self._key_column = feeding.key_field
        self._included = feeding.included_fields

    def decode(self, batch: RowBatch) -> Decoded:
        lines, locations, included, null_rows = [], [], [], []
        for position, row in enumerate(batch.rows):
            line = row_to_line(row, self._key_column)
            if isinstance(line, Rejection):
                null_rows.append((position, line))
            else:
                lines.append(line)
                locations.append(batch.locate(position))
                if self._included:
                    included.append({name: row.get(name) for name in self._included})
        as_lines = RecordBatch(batch.origin, 0, lines, locations=tuple(locations))
        decoded = self._lines.decode(as_lines) if lines else Decoded()
        if self._included:
            decoded = Decoded(
                [
                    dataclasses.replace(instances, included=[included[int(index)] for index in instances.positions])
                    for instances in decoded.instances
                ],
                decoded.dead_letters,
            )
        return Decoded(decoded.instances, dead_letters(batch, null_rows) + decoded.dead_letters)
