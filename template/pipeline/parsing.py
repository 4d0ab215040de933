"""The parse step: batches of raw records in, ImageBatches and dead letters out.

Text-to-float conversion runs vectorised over a whole batch, and the batch goes to the
model as it is.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline import metrics
from pipeline.records import ParseResult, RawRecord, parse_batch

DEAD_LETTERS = "dead_letters"


class _ParseBatchFn(beam.DoFn):
    def __init__(self, width: int):
        self._width = width
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, records: list[RawRecord]):
        self._records_read.inc(len(records))
        result: ParseResult = parse_batch(records, self._width)
        for dead_letter in result.dead_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, dead_letter)
        if result.batch is not None:
            yield result.batch


class ParseRecords(beam.PTransform):
    """Optionally spreads record batches over workers, then parses them.

    `redistribute` adds a Reshuffle: a gzip file is read by one worker, and without it that
    worker would also do all the parsing and inference.
    """

    def __init__(self, width: int, redistribute: bool = False):
        super().__init__()
        self._width = width
        self._redistribute = redistribute

    def expand(self, batches):
        if self._redistribute:
            batches = batches | "Spread batches" >> beam.Reshuffle()
        parsed = batches | "Parse batch" >> beam.ParDo(_ParseBatchFn(self._width)).with_outputs(
            DEAD_LETTERS, main="images"
        )
        return parsed.images, parsed[DEAD_LETTERS]
