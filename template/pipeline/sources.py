"""Sources: PTransforms that turn an input into batches of records, knowing nothing of models.

Every source returns (batches, dead_letters): RecordBatches (files) or RowBatches (tables) of at
most `batch_size` records, so that everything downstream works a batch at a time, and dead
letters for what a source itself finds damaged (a truncated file, a short table read).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.tfrecordio import _TFRecordUtil

from pipeline import metrics, progress
from pipeline.batches import RecordBatch, RowBatch
from pipeline.formats import CSV, TFRECORD
from pipeline.input_files import DamagedInput, open_input
from pipeline.records import DeadLetter, Reason, utc_now

_DEAD = "dead_letters"
_READ_CHUNK_BYTES = 1 << 22
_PREFETCH_BATCHES = 4
_FILE_WEIGHT_BYTES = 1 << 16
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


def _damage_letter(origin: str, damage: DamagedInput, cut: bytes = b"") -> DeadLetter:
    return DeadLetter(origin, cut, damage.reason, str(damage)[:2000], timestamp=utc_now())


def read_line_batches(
    readable: fileio.ReadableFile, batch_size: int, header: bool = False
) -> Iterator[RecordBatch | DeadLetter]:
    """The lines of one file as bytes, in batches of `batch_size` records; a DeadLetter last if the
    file turns out to be damaged.

    Bytes, not text, so that a line that is not UTF-8 becomes a dead letter rather than a
    failed job. Lines end at b'\\n' (a '\\r' before it is stripped by the decoders), a UTF-8
    byte-order mark at the start of the file is dropped as Windows tools write it, and a last
    line without a newline is still a record. With `header`, the first line names the columns
    and rides along with every batch. Compression is detected from the file name and checked:
    the records before damage are read, the damage itself (with the partial line it cut) is one
    dead letter, and nothing after it is passed off as the file's end.
    """
    origin = readable.metadata.path
    lines_seen = 0  # line number of the last line split off
    batch: list[bytes] = []
    header_line: bytes | None = None
    remainder = b""
    damage: DamagedInput | None = None

    def emit(lines: list[bytes]) -> RecordBatch:
        return RecordBatch(origin, lines_seen - len(lines) + 1, lines, header_line)

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
            if header and header_line is None and lines:
                header_line, lines = lines[0], lines[1:]
                lines_seen += 1
            for line in lines:
                batch.append(line)
                lines_seen += 1
                if len(batch) == batch_size:
                    yield emit(batch)
                    batch = []
    if remainder and damage is None:
        if header and header_line is None:
            header_line = remainder
        else:
            batch.append(remainder)
        lines_seen += 1
    if batch:
        yield emit(batch)
    if damage is not None:
        yield _damage_letter(origin, damage, remainder)


def read_tfrecord_batches(readable: fileio.ReadableFile, batch_size: int) -> Iterator[RecordBatch | DeadLetter]:
    """The records of one TFRecord file (gzip or not, by name), in batches, each record's length and
    data checked against their CRC-32C by Beam's reader; damage ends the file in one dead letter."""
    origin = readable.metadata.path
    batch: list[bytes] = []
    index = 0
    with open_input(origin, on_bytes=progress.bytes_read) as handle:
        while True:
            try:
                record = _TFRecordUtil.read_record(handle)
            except DamagedInput as damage:
                letter = _damage_letter(origin, damage)
                break
            except ValueError as error:  # a record cut short, or its CRC does not match
                reason = Reason.TRUNCATED_INPUT if "Fewer than" in str(error) else Reason.CORRUPT_INPUT
                problem = str(error).split(":")[0]
                message = f"{origin}: record {index + len(batch)}: {problem}; the rest of the file was not read"
                letter = DeadLetter(origin, b"", reason, message, timestamp=utc_now())
                break
            if record is None:
                letter = None
                break
            batch.append(record)
            if len(batch) == batch_size:
                yield RecordBatch(origin, index, batch)
                index += len(batch)
                batch = []
    if batch:
        yield RecordBatch(origin, index, batch)
    if letter is not None:
        yield letter


class _ReadBatchesFn(beam.DoFn):
    """Batches of the records of each file, read ahead in a thread; a damaged file's dead letter beside them."""

    def __init__(self, record_format: str, batch_size: int):
        self._record_format = record_format
        self._batch_size = batch_size
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def _batches(self, readable: fileio.ReadableFile) -> Iterator[RecordBatch | DeadLetter]:
        if self._record_format == TFRECORD:
            return read_tfrecord_batches(readable, self._batch_size)
        return read_line_batches(readable, self._batch_size, header=self._record_format == CSV)

    def process(self, readable: fileio.ReadableFile):
        for item in prefetched(self._batches(readable)):
            if isinstance(item, DeadLetter):
                self._records_read.inc()  # the damaged rest of the file counts as one record that was read
                yield beam.pvalue.TaggedOutput(_DEAD, item)
            else:
                yield item


def _matched_files(begin, pattern: str, spread: bool):
    """Every file matching `pattern`, opened for reading (Beam's fileio).

    `spread` reshuffles the matches first: matching is one element's work, and without it every
    file of the job would be read by the worker that matched them.
    """
    matches = begin | "Match files" >> fileio.MatchFiles(pattern)
    if spread:
        matches = matches | "Spread files" >> beam.Reshuffle()
    return matches | "Open files" >> fileio.ReadMatches()


class ReadFileRecords(beam.PTransform):
    """Records of every file matching a pattern (local, gs://, compressed or not): lines, or TFRecord
    records, in batches of one file each; damaged files as dead letters. `spread_files` spreads
    the files over the workers (remote runners)."""

    def __init__(self, pattern: str, record_format: str, batch_size: int, spread_files: bool = False):
        super().__init__()
        self._pattern = pattern
        self._record_format = record_format
        self._batch_size = batch_size
        self._spread_files = spread_files

    def expand(self, begin):
        read = _matched_files(begin, self._pattern, self._spread_files) | "Read batches" >> beam.ParDo(
            _ReadBatchesFn(self._record_format, self._batch_size)
        ).with_outputs(_DEAD, main="batches")
        return read.batches, read[_DEAD]


class _ReadWholeFileFn(beam.DoFn):
    """One file's bytes (decompressed when its name says so), or the dead letter of a damaged one."""

    def __init__(self):
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        try:
            data = read_whole_file(path, on_bytes=progress.bytes_read)
        except DamagedInput as damage:
            self._records_read.inc()
            yield beam.pvalue.TaggedOutput(_DEAD, _damage_letter(path, damage))
            return
        yield path, data


def read_whole_file(path: str, on_bytes: Callable[[int], None] | None = None) -> bytes:
    """A file's bytes, decompressed when its name says so; DamagedInput when they cannot all be."""
    with open_input(path, on_bytes=on_bytes) as handle:
        return handle.read()


def files_batch(files: list[tuple[str, bytes]]) -> RecordBatch:
    """Whole files as one batch of records, each file's path its record's origin."""
    return RecordBatch("", 0, [data for _, data in files], origins=tuple(path for path, _ in files))


def _file_weight(file: tuple[str, bytes]) -> int:
    """A file's share of a batch: one per started 64 KiB."""
    return 1 + len(file[1]) // _FILE_WEIGHT_BYTES


class ReadWholeFiles(beam.PTransform):
    """Every file matching a pattern as one record, its path the record's origin, in batches of at
    most `batch_size` files and about `batch_size` x 64 KiB, so that large files come fewer at a time."""

    def __init__(self, pattern: str, batch_size: int, spread_files: bool = False):
        super().__init__()
        self._pattern = pattern
        self._batch_size = batch_size
        self._spread_files = spread_files

    def expand(self, begin):
        read = _matched_files(begin, self._pattern, self._spread_files) | "Read files" >> beam.ParDo(
            _ReadWholeFileFn()
        ).with_outputs(_DEAD, main="files")
        batches = (
            read.files
            | "Batch files"
            >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size, element_size_fn=_file_weight)
            | "As record batches" >> beam.Map(files_batch)
        )
        return batches, read[_DEAD]


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


class ReadTableRows(beam.PTransform):
    """Rows of a table or query through the Storage Read API, in batches (RowBatch).

    For a table, the rows read are counted and compared with the count taken at launch.
    """

    def __init__(
        self,
        batch_size: int,
        table: str | None = None,
        query: str | None = None,
        project: str | None = None,
        expected_rows: int | None = None,
        columns: tuple[str, ...] | None = None,
        key_column: str | None = None,
    ):
        super().__init__()
        if (table is None) == (query is None):
            raise ValueError("give exactly one of table and query")
        self._batch_size = batch_size
        self._table = table
        self._query = query
        self._project = project
        self._expected_rows = expected_rows
        self._columns = columns
        self._key_column = key_column

    def expand(self, begin):
        method = beam.io.ReadFromBigQuery.Method.DIRECT_READ
        if self._table:
            read = beam.io.ReadFromBigQuery(
                table=self._table,
                method=method,
                selected_fields=list(self._columns) if self._columns else None,
                project=self._project,
            )
            origin = self._table
        else:
            read = beam.io.ReadFromBigQuery(
                query=self._query, use_standard_sql=True, method=method, project=self._project
            )
            origin = "query"
        rows = begin | "Read rows" >> read
        key_column = self._key_column
        batches = (
            rows
            | "Batch rows"
            >> beam.BatchElements(min_batch_size=min(16, self._batch_size), max_batch_size=self._batch_size)
            | "As row batches" >> beam.Map(lambda batch: RowBatch(origin, list(batch), key_column))
        )
        no_dead_letters = begin | "No damage" >> beam.Create([]).with_output_types(DeadLetter)
        if self._expected_rows is None:
            return batches, no_dead_letters
        short = (
            rows
            | "Count rows" >> beam.combiners.Count.Globally()
            | "Check row count" >> beam.ParDo(_CheckRowCountFn(self._expected_rows, origin))
        )
        return batches, short
