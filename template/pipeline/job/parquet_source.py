"""Parquet files read in slices of their row groups, so that one large file is read by many workers.

Each matched file's footer is read (`reading.columnar_files.parquet_slices`) and its row groups are
cut into slices of about 64 MB; on a remote runner the files, then the slices, are reshuffled over the
workers, each of which reads its slices through Arrow a batch (ColumnBatch) at a time. A file whose
footer, or a row group, is damaged is a dead letter; the rest is read.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.data.dead_letters import DeadLetter
from pipeline.job import metrics, progress
from pipeline.job.sources import matched_metadata
from pipeline.job.tags import DEAD_LETTERS
from pipeline.reading.columnar_files import SLICE_BYTES, ParquetSlice, parquet_slices, read_parquet_slice
from pipeline.reading.readers import prefetched


class _ParquetSlicesFn(beam.DoFn):
    """A Parquet file's row groups in slices (an element of work each), from its footer; the dead letter of
    a file whose footer cannot be read."""

    def __init__(self, slice_bytes: int):
        self._slice_bytes = slice_bytes
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, metadata):
        updated = getattr(metadata, "last_updated_in_seconds", None)  # lets a worker read the footer once
        slices = parquet_slices(metadata.path, metadata.size_in_bytes, self._slice_bytes, updated)
        if isinstance(slices, DeadLetter):
            self._records_read.inc()  # the unreadable file counts as one record that was read
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, slices)
            return
        yield from slices


class _ReadParquetSliceFn(beam.DoFn):
    """A slice's rows in ColumnBatches, read ahead in a thread (Arrow decodes without the GIL); a damaged
    row group's dead letter beside them."""

    def __init__(self, batch_size: int, columns: tuple[str, ...] | None, key_column: str | None):
        self._batch_size = batch_size
        self._columns = None if columns is None else list(columns)
        self._key_column = key_column
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, piece: ParquetSlice):
        batches = read_parquet_slice(
            piece, self._batch_size, self._columns, self._key_column, on_bytes=progress.bytes_read
        )
        for item in prefetched(batches):
            if isinstance(item, DeadLetter):
                self._records_read.inc()  # the damaged rest of a row group counts as one record that was read
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, item)
            else:
                yield item


class ReadParquetFiles(beam.PTransform):
    """Rows of every Parquet file matching a pattern (or under a folder), in ColumnBatches of at most
    `batch_size`, only `columns` (None: all).

    Each file becomes slices of its row groups (about `slice_bytes` of them together, a larger one alone);
    with `spread` (remote runners) the files and then the slices are reshuffled, so that the row groups of
    one large file are read by many workers, not one. A file whose footer or a row group is damaged is a
    dead letter; the rest is read.
    """

    def __init__(
        self,
        pattern: str,
        batch_size: int,
        columns: tuple[str, ...] | None = None,
        spread: bool = False,
        key_column: str | None = None,
        slice_bytes: int = SLICE_BYTES,
    ):
        super().__init__()
        self._pattern = pattern
        self._batch_size = batch_size
        self._columns = columns
        self._spread = spread
        self._key_column = key_column
        self._slice_bytes = slice_bytes

    def expand(self, begin):
        files = matched_metadata(begin, self._pattern)
        if self._spread:
            files = files | "Spread files" >> beam.Reshuffle()
        planned = files | "Plan row groups" >> beam.ParDo(_ParquetSlicesFn(self._slice_bytes)).with_outputs(
            DEAD_LETTERS, main="slices"
        )
        slices = planned.slices
        if self._spread:
            slices = slices | "Spread row groups" >> beam.Reshuffle()
        read = slices | "Read row groups" >> beam.ParDo(
            _ReadParquetSliceFn(self._batch_size, self._columns, self._key_column)
        ).with_outputs(DEAD_LETTERS, main="batches")
        damaged = (planned[DEAD_LETTERS], read[DEAD_LETTERS]) | "Damaged files" >> beam.Flatten()
        return read.batches, damaged
