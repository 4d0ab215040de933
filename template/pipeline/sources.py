"""Sources: PTransforms that turn an input into batches of RawRecords, knowing nothing of models.

Every source returns (batches, dead_letters): lists of at most `batch_size` records, so that
everything downstream works a batch at a time, and the rows a source itself must reject
(a BigQuery row with a NULL field has no text line to hand to the parser).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

import apache_beam as beam
from apache_beam.io import fileio

from pipeline import metrics
from pipeline.input_files import open_input
from pipeline.records import DeadLetter, RawRecord, row_to_record

_DEAD = "dead_letters"
_READ_CHUNK_BYTES = 1 << 22
_PREFETCH_BATCHES = 4
_T = TypeVar("_T")


def prefetched(items: Iterable[_T], depth: int = _PREFETCH_BATCHES) -> Iterator[_T]:
    """Iterates `items` in a background thread, at most `depth` ahead of the consumer.

    Reading and decompressing (zlib releases the GIL) then overlap with the parsing and
    inference downstream, instead of taking turns with them. Errors surface in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
            buffer.put((done, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put((done, error))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.01)


def read_line_batches(readable: fileio.ReadableFile, batch_size: int) -> Iterator[list[RawRecord]]:
    """The lines of one file as bytes, in lists of `batch_size` records.

    Bytes, not text, so that a line that is not UTF-8 becomes a dead letter rather than a
    failed job. Lines end at b'\\n' (a '\\r' before it is stripped by the parser); a last
    line without a newline is still a record. Compression is detected from the file name.
    """
    origin = readable.metadata.path
    batch: list[RawRecord] = []
    remainder = b""
    with open_input(origin) as handle:
        while True:
            chunk = handle.read(_READ_CHUNK_BYTES)
            if not chunk:
                break
            lines = (remainder + chunk).split(b"\n")
            remainder = lines.pop()
            for line in lines:
                batch.append(RawRecord(origin, line))
                if len(batch) == batch_size:
                    yield batch
                    batch = []
    if remainder:
        batch.append(RawRecord(origin, remainder))
    if batch:
        yield batch


class ReadTextRecords(beam.PTransform):
    """Lines of every file matching a pattern (local, gs://, gzip or not), in batches."""

    def __init__(self, pattern: str, batch_size: int):
        super().__init__()
        self._pattern = pattern
        self._batch_size = batch_size

    def expand(self, begin):
        batches = (
            begin
            | "Match files" >> fileio.MatchFiles(self._pattern)
            | "Open files" >> fileio.ReadMatches()
            | "Read line batches"
            >> beam.FlatMap(lambda readable: prefetched(read_line_batches(readable, self._batch_size)))
        )
        no_dead_letters = begin | "No rejected rows" >> beam.Create([]).with_output_types(DeadLetter)
        return batches, no_dead_letters


class _RowsToRecordsFn(beam.DoFn):
    """Rows become text records; a row with a NULL field is read, and rejected, here."""

    def __init__(self, origin: str):
        self._origin = origin
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, row: dict):
        outcome = row_to_record(row, self._origin)
        if isinstance(outcome, DeadLetter):
            self._records_read.inc()  # the parse step counts the rows that reach it
            yield beam.pvalue.TaggedOutput(_DEAD, outcome)
        else:
            yield outcome


class ReadBigQueryRecords(beam.PTransform):
    """Rows (key INTEGER, image STRING) of a table or query through the Storage Read API, in batches."""

    def __init__(self, batch_size: int, table: str | None = None, query: str | None = None, project: str | None = None):
        super().__init__()
        if (table is None) == (query is None):
            raise ValueError("give exactly one of table and query")
        self._batch_size = batch_size
        self._table = table
        self._query = query
        self._project = project

    def expand(self, begin):
        method = beam.io.ReadFromBigQuery.Method.DIRECT_READ
        if self._table:
            read = beam.io.ReadFromBigQuery(
                table=self._table, method=method, selected_fields=["key", "image"], project=self._project
            )
            origin = self._table
        else:
            read = beam.io.ReadFromBigQuery(
                query=self._query, use_standard_sql=True, method=method, project=self._project
            )
            origin = "query"
        rows = begin | "Read rows" >> read
        split = rows | "As records" >> beam.ParDo(_RowsToRecordsFn(origin)).with_outputs(_DEAD, main="records")
        batches = split.records | "Batch records" >> beam.BatchElements(
            min_batch_size=min(16, self._batch_size), max_batch_size=self._batch_size
        )
        return batches, split[_DEAD]
