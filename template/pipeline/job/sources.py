"""Sources: PTransforms that turn an input into batches of records, knowing nothing of models.

Every source returns (batches, dead_letters): RecordBatches (files), RowBatches (tables, Avro) or
ColumnBatches (Parquet, `job.parquet_source`) of at most `batch_size` records, so that everything
downstream works a batch at a time, and dead letters for what a source itself finds damaged (a
truncated file, a short table read). An input that names a folder (a trailing `/`) reads every file
under it but hidden ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.transforms.window import TimestampedValue

from pipeline.data.batches import RecordBatch, RowBatch
from pipeline.data.dead_letters import DeadLetter, Reason, utc_now
from pipeline.data.formats import AVRO, folder_files, is_folder, is_input_file
from pipeline.errors import DamagedInput
from pipeline.job import metrics, progress, windows
from pipeline.job.line_source import read_line_files
from pipeline.job.tags import DEAD_LETTERS
from pipeline.reading import line_ranges
from pipeline.reading.columnar_files import read_avro_batches
from pipeline.reading.line_ranges import LINE_FORMATS
from pipeline.reading.readers import (
    damage_letter,
    files_batch,
    prefetched,
    read_tfrecord_batches,
    read_whole_file,
)

_FILE_WEIGHT_BYTES = 1 << 16


class _ReadBatchesFn(beam.DoFn):
    """Batches of the records of each TFRecord or Avro file, read ahead in a thread; a damaged file's dead
    letter beside them. (Line files are read by `job.line_source`.)"""

    def __init__(self, record_format: str, batch_size: int, key_column: str | None = None):
        self._record_format = record_format
        self._batch_size = batch_size
        self._key_column = key_column  # Avro rows': where a row's dead letter finds it
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def _batches(self, readable: fileio.ReadableFile) -> Iterator[RecordBatch | RowBatch | DeadLetter]:
        if self._record_format == AVRO:
            path = readable.metadata.path
            return read_avro_batches(path, self._batch_size, self._key_column, on_bytes=progress.bytes_read)
        return read_tfrecord_batches(readable, self._batch_size, on_bytes=progress.bytes_read)

    def process(self, readable: fileio.ReadableFile):
        for item in prefetched(self._batches(readable)):
            if isinstance(item, DeadLetter):
                self._records_read.inc()  # the damaged rest of the file counts as one record that was read
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, item)
            else:
                yield item


def matched_metadata(begin, pattern: str):
    """The metadata of every file matching `pattern`, or under a folder but its hidden files (`_SUCCESS`,
    `_metadata`, `.crc`), never a folder's placeholder object (`folder/`): the rule the launch applies."""
    matched = begin | "Match files" >> fileio.MatchFiles(folder_files(pattern) if is_folder(pattern) else pattern)
    return matched | "Skip hidden files" >> beam.Filter(lambda metadata: is_input_file(metadata.path, pattern))


def _matched_files(begin, pattern: str, spread: bool):
    """Every file matching `pattern`, opened for reading (Beam's fileio).

    `spread` reshuffles the matches first: matching is one element's work, and without it every
    file of the job would be read by the worker that matched them.
    """
    return _opened(matched_metadata(begin, pattern), spread)


def _opened(matches, spread: bool):
    if spread:
        matches = matches | "Spread files" >> beam.Reshuffle()
    return matches | "Open files" >> fileio.ReadMatches()


class ReadFileRecords(beam.PTransform):
    """Records of every file matching a pattern (local, gs://, compressed or not): lines, TFRecord records, or
    Avro rows (RowBatches keyed by `key_column`), in batches of one file each; damaged files as dead letters.

    Line files are read in units spread over the workers (`job.line_source`): uncompressed ones in
    byte ranges of about `range_bytes`, compressed ones whole. Every file but an uncompressed line file
    has one reader (neither a compressed nor a TFRecord or Avro file has an index to split it by).
    `spread_files` spreads the files over the workers before they are read or split (remote runners),
    and `spread_batches` the batches of the files read whole (a few large ones)."""

    def __init__(
        self,
        pattern: str,
        record_format: str,
        batch_size: int,
        spread_files: bool = False,
        key_column: str | None = None,
        range_bytes: int | None = None,
        spread_batches: bool = False,
    ):
        super().__init__()
        self._pattern = pattern
        self._record_format = record_format
        self._batch_size = batch_size
        self._spread_files = spread_files
        self._key_column = key_column
        self._range_bytes = range_bytes or line_ranges.RANGE_BYTES
        self._spread_batches = spread_batches

    def _read_whole(self, matches):
        read = _opened(matches, self._spread_files) | "Read batches" >> beam.ParDo(
            _ReadBatchesFn(self._record_format, self._batch_size, self._key_column)
        ).with_outputs(DEAD_LETTERS, main="batches")
        batches = read.batches
        if self._spread_batches:  # one worker reads a large file whole; the others score its batches too
            batches = batches | "Spread batches" >> beam.Reshuffle()
        return batches, read[DEAD_LETTERS]

    def expand(self, begin):
        matches = matched_metadata(begin, self._pattern)
        if self._record_format in LINE_FORMATS:
            return read_line_files(
                matches,
                self._record_format,
                self._batch_size,
                self._range_bytes,
                self._spread_files,
                self._spread_batches,
            )
        return self._read_whole(matches)


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
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, damage_letter(path, damage))
            return
        yield path, data


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
        ).with_outputs(DEAD_LETTERS, main="files")
        batches = (
            read.files
            | "Batch files"
            >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size, element_size_fn=_file_weight)
            | "As record batches" >> beam.Map(files_batch)
        )
        return batches, read[DEAD_LETTERS]


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


def messages_batch(subscription: str, messages: list[tuple[bytes, str]]) -> RecordBatch:
    """Messages as one batch of records, each keyed (where its format has no key) by its message id."""
    return RecordBatch(
        subscription, 0, [body for body, _ in messages], locations=tuple(message_id for _, message_id in messages)
    )


def _body_and_id(message) -> tuple[bytes, str]:
    return message.data or b"", message.message_id or f"unnumbered-{uuid.uuid4().hex}"


def _in_its_window(batch: RecordBatch, window=beam.DoFn.WindowParam) -> TimestampedValue:
    """A batch stamped inside the window its messages were published in: GroupIntoBatches stamps a batch it
    flushes at a window's end with the end itself, which belongs to the next window."""
    return TimestampedValue(batch, window.max_timestamp())


def _batched(messages, subscription: str, batch_size: int, max_wait_s: float, window_s: int | None):
    """The steps of `BatchMessages`, applied under the caller's own step (so that ReadMessages keeps its step
    names, which a job replaced with --update matches)."""
    if window_s is not None:
        messages = messages | "Window by publish time" >> windows.event_time_windows(window_s)
    batches = (
        messages
        | "Body and id" >> beam.Map(lambda message: (0, _body_and_id(message)))
        | "Batch messages" >> beam.GroupIntoBatches.WithShardedKey(batch_size, max_buffering_duration_secs=max_wait_s)
        | "As record batches" >> beam.MapTuple(lambda _, batch: messages_batch(subscription, list(batch)))
    )
    if window_s is None:
        return batches
    return batches | "Stamp in its window" >> beam.Map(_in_its_window)


class BatchMessages(beam.PTransform):
    """Pub/Sub messages (timestamped with their publish time) in RecordBatches of at most `batch_size` that
    wait at most `max_wait_s` to fill: a trickle is scored promptly, a flood in full batches. The batches
    are made by GroupIntoBatches on a sharded key, which Dataflow spreads over workers as the load grows.

    With `window_s`, messages are first put in the event-time windows of the text outputs (`windows`):
    a batch then never spans two windows, and everything made from it (rows, dead letters) keeps its
    window, with the window's last instant as its timestamp.
    """

    def __init__(self, subscription: str, batch_size: int, max_wait_s: float, window_s: int | None = None):
        super().__init__()
        self._subscription = subscription
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._window_s = window_s

    def expand(self, messages):
        return _batched(messages, self._subscription, self._batch_size, self._max_wait_s, self._window_s)


class ReadMessages(beam.PTransform):
    """Messages of a Pub/Sub subscription, one record each, in batches as `BatchMessages` makes them;
    windowed by publish time with `window_s` (a streaming job with text outputs)."""

    def __init__(self, subscription: str, batch_size: int, max_wait_s: float, window_s: int | None = None):
        super().__init__()
        self._subscription = subscription
        self._batch_size = batch_size
        self._max_wait_s = max_wait_s
        self._window_s = window_s

    def expand(self, begin):
        messages = begin | "Read messages" >> beam.io.ReadFromPubSub(
            subscription=self._subscription, with_attributes=True
        )
        batches = _batched(messages, self._subscription, self._batch_size, self._max_wait_s, self._window_s)
        no_damage = begin | "No damage" >> beam.Create([]).with_output_types(DeadLetter)
        if self._window_s is not None:  # flattened with the windowed dead letters: windowed like them
            no_damage = no_damage | "Window like the messages" >> windows.event_time_windows(self._window_s)
        return batches, no_damage
