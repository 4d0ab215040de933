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

from pipeline import metrics, progress
from pipeline.input_files import DamagedInput, open_input
from pipeline.records import DeadLetter, RawRecord, Reason, row_to_record, utc_now

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


_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def read_line_batches(readable: fileio.ReadableFile, batch_size: int) -> Iterator[list[RawRecord] | DeadLetter]:
    """The lines of one file as bytes, in lists of `batch_size` records; a DeadLetter last if the
    file turns out to be damaged.

    Bytes, not text, so that a line that is not UTF-8 becomes a dead letter rather than a
    failed job. Lines end at b'\\n' (a '\\r' before it is stripped by the parser), a UTF-8 byte-order
    mark at the start of the file is dropped as Windows tools write it, and a last line without
    a newline is still a record. Compression is detected from the file name and checked: the
    records before damage are read, the damage itself (with the partial line it cut) is one
    dead letter, and nothing after it is passed off as the file's end.
    """
    origin = readable.metadata.path
    batch: list[RawRecord] = []
    remainder = b""
    damage: DamagedInput | None = None
    with open_input(origin, on_bytes=progress.bytes_read) as handle:
        first = True
        while True:
            try:
                chunk = handle.read(_READ_CHUNK_BYTES)
            except DamagedInput as error:
                damage = error
                break
            if not chunk:
                break
            if first:
                chunk, first = chunk.removeprefix(_BYTE_ORDER_MARK), False
            lines = (remainder + chunk).split(b"\n")
            remainder = lines.pop()
            for line in lines:
                batch.append(RawRecord(origin, line))
                if len(batch) == batch_size:
                    yield batch
                    batch = []
    if remainder and damage is None:
        batch.append(RawRecord(origin, remainder))
    if batch:
        yield batch
    if damage is not None:
        yield DeadLetter(origin, remainder, damage.reason, str(damage)[:2000], timestamp=utc_now())


class _ReadLineBatchesFn(beam.DoFn):
    """Batches of lines of each file, read ahead in a thread; a damaged file's dead letter beside them."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, readable: fileio.ReadableFile):
        for item in prefetched(read_line_batches(readable, self._batch_size)):
            if isinstance(item, DeadLetter):
                self._records_read.inc()  # the damaged rest of the file counts as one record that was read
                yield beam.pvalue.TaggedOutput(_DEAD, item)
            else:
                yield item


class ReadTextRecords(beam.PTransform):
    """Lines of every file matching a pattern (local, gs://, gzip or not), in batches; damaged files
    as dead letters."""

    def __init__(self, pattern: str, batch_size: int):
        super().__init__()
        self._pattern = pattern
        self._batch_size = batch_size

    def expand(self, begin):
        read = (
            begin
            | "Match files" >> fileio.MatchFiles(self._pattern)
            | "Open files" >> fileio.ReadMatches()
            | "Read line batches"
            >> beam.ParDo(_ReadLineBatchesFn(self._batch_size)).with_outputs(_DEAD, main="batches")
        )
        return read.batches, read[_DEAD]


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


class _CheckRowCountFn(beam.DoFn):
    """A dead letter when fewer rows were read than the table held at launch (a read stream that
    ended early would otherwise look like a smaller table)."""

    def __init__(self, expected: int, origin: str):
        self._expected = expected
        self._origin = origin
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, count: int):
        if count < self._expected:
            self._records_read.inc()  # the rows not read count as one record that was read, like a damaged file
            message = (
                f"read {count:,} rows of the {self._expected:,} the table held at launch: a read stream ended "
                "early, or rows were deleted while the job ran"
            )
            yield DeadLetter(self._origin, b"", Reason.INCOMPLETE_READ, message, timestamp=utc_now())


class ReadBigQueryRecords(beam.PTransform):
    """Rows (key INTEGER, image STRING) of a table or query through the Storage Read API, in batches.

    For a table, the rows read are counted and compared with the count taken at launch.
    """

    def __init__(
        self,
        batch_size: int,
        table: str | None = None,
        query: str | None = None,
        project: str | None = None,
        expected_rows: int | None = None,
    ):
        super().__init__()
        if (table is None) == (query is None):
            raise ValueError("give exactly one of table and query")
        self._batch_size = batch_size
        self._table = table
        self._query = query
        self._project = project
        self._expected_rows = expected_rows

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
        if self._expected_rows is None:
            return batches, split[_DEAD]
        short = (
            rows
            | "Count rows" >> beam.combiners.Count.Globally()
            | "Check row count" >> beam.ParDo(_CheckRowCountFn(self._expected_rows, origin))
        )
        return batches, (split[_DEAD], short) | "Gather source dead letters" >> beam.Flatten()
