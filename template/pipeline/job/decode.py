"""The decode step: batches of records in, InstanceBatches typed by the signature and dead letters out.

Decoding runs vectorised over a whole batch where the format allows (the 2017 sample's lines),
and the batch goes to the model as it is. It runs one batch ahead of the model, in a worker
thread: while the model scores batch n downstream, batch n+1 is decoded (both release the GIL
in their native code), so two cores are used for the two heaviest steps instead of taking turns.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.data.batches import SourceBatch
from pipeline.data.decoders import Decoded, Decoder
from pipeline.job import metrics, progress
from pipeline.job.tags import DEAD_LETTERS


class _Pending(NamedTuple):
    result: Future
    records: int
    window: Any
    timestamp: Any


class _DecodeBatchFn(beam.DoFn):
    def __init__(self, decoder: Decoder):
        self._decoder = decoder
        self._records_read = metrics.counter(metrics.RECORDS_READ)
        self._udf_dropped = metrics.counter(metrics.UDF_DROPPED)
        self._udf_added = metrics.counter(metrics.UDF_ADDED)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: _Pending | None = None

    def setup(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")

    def start_bundle(self):
        self._pending = None

    def process(self, batch: SourceBatch, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        assert self._pool is not None, "setup() makes the pool"
        pending = _Pending(self._pool.submit(self._decoder.decode, batch), len(batch), window, timestamp)
        previous, self._pending = self._pending, pending
        if previous is not None:
            yield from self._outputs(previous)

    def finish_bundle(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            yield from self._outputs(pending)

    def teardown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _outputs(self, pending: _Pending):
        """A batch's outputs, in its own window: they leave while the next element is processed,
        or in finish_bundle, where outputs must carry their window explicitly."""
        result: Decoded = pending.result.result()
        self._records_read.inc(pending.records)  # counters belong to the bundle's thread
        progress.records_read(pending.records)
        if result.dropped or result.added:  # a UDF's doing: every record read stays accounted for
            self._udf_dropped.inc(result.dropped)
            self._udf_added.inc(result.added)
            progress.udf_records(result.dropped, result.added)

        def wrap(value):
            return WindowedValue(value, pending.timestamp, (pending.window,))

        for dead_letter in result.dead_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, wrap(dead_letter))
        for instances in result.instances:
            yield wrap(instances)


class DecodeRecords(beam.PTransform):
    """Decodes record batches where they were read (the sources spread the reading over the workers)."""

    def __init__(self, decoder: Decoder):
        super().__init__()
        self._decoder = decoder

    def expand(self, batches):
        decoded = batches | "Decode batch" >> beam.ParDo(_DecodeBatchFn(self._decoder)).with_outputs(
            DEAD_LETTERS, main="instances"
        )
        return decoded.instances, decoded[DEAD_LETTERS]
