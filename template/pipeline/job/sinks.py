"""Sinks: PTransforms that count, format and write predictions or dead letters.

Formatting happens here, per batch, with the row layout of `data.rows`; the two kinds of sink differ
only in how rows are written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
import orjson
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery

from pipeline.config import TEXT_SUFFIX
from pipeline.data.batches import ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.rows import RowLayout, json_lines
from pipeline.data.udf import UdfCode
from pipeline.data.udf_rows import after_model, row_instances
from pipeline.job import metrics, progress, windows
from pipeline.job.load_errors import NameRefusedRows  # noqa: F401  # imported: a refused load names its row
from pipeline.job.table_sinks import INSERT_RETRY, LogRefusedDeadLetters, RefusedRows, TableWrite
from pipeline.job.tags import DEAD_LETTERS

DEAD_LETTER_SCHEMA = {
    "fields": [
        {"name": "timestamp", "type": "TIMESTAMP", "mode": "REQUIRED"},
        {"name": "origin", "type": "STRING", "mode": "NULLABLE"},
        {"name": "position", "type": "STRING", "mode": "NULLABLE"},
        {"name": "reason", "type": "STRING", "mode": "REQUIRED"},
        {"name": "errorMessage", "type": "STRING", "mode": "NULLABLE"},
        {"name": "payloadString", "type": "STRING", "mode": "NULLABLE"},
        {"name": "payloadBytes", "type": "BYTES", "mode": "NULLABLE"},
        {"name": "stacktrace", "type": "STRING", "mode": "NULLABLE"},
    ]
}


class _FormatRowsFn(beam.DoFn):
    """Turns a batch of model outputs into rows (one JSON-lines string per batch for a text sink), counts
    the predictions, notes when the first was made, and dead-letters the instances that make no row. A UDF
    after the model (`udf.after`) changes each row before it is written (`data.udf_rows`)."""

    def __init__(self, layout: RowLayout, as_json_lines: bool, udf: UdfCode | None = None):
        self._layout = layout
        self._as_json_lines = as_json_lines
        self._udf = udf if udf is not None and udf.after is not None else None
        self._schema = None if as_json_lines or self._udf is None else layout.schema()
        self._predictions = metrics.counter(metrics.PREDICTIONS)
        self._first_prediction = metrics.first_prediction_clock()

    def process(self, scored: ScoredBatch):
        kept, letters = self._layout.split(scored)
        rows, more_letters = self._layout.rows(kept, as_table=not self._as_json_lines) if kept else ([], [])
        written: list[Any] = rows
        if self._udf is not None and kept is not None and rows:  # JSON mode: the UDF's rows come as lines
            indices = row_instances(self._layout, kept, not self._as_json_lines, len(more_letters))
            written, udf_letters = after_model(self._udf, kept.instances, rows, indices, self._schema)
            more_letters = more_letters + udf_letters
        for letter in letters + more_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
        if not written:
            return
        self._predictions.inc(len(written))
        progress.predictions_done(len(written))
        self._first_prediction.update(metrics.now_ms())
        if self._as_json_lines:  # one element per batch: one line per record
            yield "\n".join(written) if self._udf is not None else json_lines(written)
        else:
            yield from written


class FormatRows(beam.PTransform):
    """ScoredBatches in; rows out (JSON-lines strings or BigQuery rows), and dead letters for the
    instances whose outputs cannot be written (NaN or infinite, not UTF-8, an included field that
    does not fit its column, what a UDF after the model raises or returns that cannot be written)."""

    def __init__(self, layout: RowLayout, as_json_lines: bool, udf: UdfCode | None = None):
        super().__init__()
        self._layout = layout
        self._as_json_lines = as_json_lines
        self._udf = udf

    def expand(self, scored):
        format_rows = _FormatRowsFn(self._layout, self._as_json_lines, self._udf)
        formatted = scored | "Format" >> beam.ParDo(format_rows).with_outputs(DEAD_LETTERS, main="rows")
        return formatted.rows, formatted[DEAD_LETTERS]


class _CountDeadLettersFn(beam.DoFn):
    """Counts each dead letter (and by reason), and formats it: Google's error-record row, or Vertex AI's
    (`vertex`: the job's row layout in Vertex AI's shape, which says how its instances are written)."""

    def __init__(self, as_json_lines: bool, vertex: RowLayout | None = None):
        self._as_json_lines = as_json_lines
        self._vertex = vertex
        self._total = metrics.counter(metrics.DEAD_LETTERS)
        self._by_reason: dict = {}

    def process(self, dead_letter: DeadLetter):
        self._total.inc()
        progress.dead_letter_done(dead_letter.reason)
        reason_counter = self._by_reason.get(dead_letter.reason)
        if reason_counter is None:
            reason_counter = metrics.counter(metrics.DEAD_LETTER_REASON_PREFIX + dead_letter.reason)
            self._by_reason[dead_letter.reason] = reason_counter
        reason_counter.inc()
        if self._vertex is not None:
            row = self._vertex.dead_letter_row(dead_letter, as_table=not self._as_json_lines)
            yield orjson.dumps(row).decode("utf-8") if self._as_json_lines else row
        else:
            yield dead_letter.to_json_line() if self._as_json_lines else dead_letter.to_row()


def _pane_file_naming(name: str) -> Callable[..., str]:
    """`<name>-<start>-<end>-<pane>-SSSSS-of-NNNNN.jsonl`. Beam's default naming leaves the pane out (a TODO in
    fileio), so a window's late firing would be written over the files of its first."""

    def naming(window, pane, shard_index, total_shards, compression, destination) -> str:
        start, end = (bound.to_utc_datetime().isoformat() for bound in (window.start, window.end))
        index = pane.index if pane is not None else 0
        return f"{name}-{start}-{end}-{index}-{shard_index:05d}-of-{total_shards:05d}{TEXT_SUFFIX}"

    return naming


class _WriteLines(beam.PTransform):
    """JSON-lines strings (one or more lines each) into files: `<prefix>-SSSSS-of-NNNNN.jsonl` in a batch job,
    `<prefix>-<start>-<end>-<pane>-SSSSS-of-NNNNN.jsonl` per event-time window of `window_s` seconds in a
    streaming one: by each element's timestamp, which lies in the window of its messages' publish time (the
    source batches per window), so a backlog or a retried bundle lands in the window it was published in.
    A late element is written in a later pane of its window, never over the files of an earlier one."""

    def __init__(self, prefix: str, window_s: int | None = None):
        super().__init__()
        self._prefix = prefix
        self._window_s = window_s

    def expand(self, lines):
        if self._window_s is None:
            return lines | "Write files" >> beam.io.WriteToText(self._prefix, file_name_suffix=TEXT_SUFFIX)
        directory, name = FileSystems.split(self._prefix)
        return (
            lines
            | "Window" >> windows.event_time_windows(self._window_s)
            | "Write files"
            >> fileio.WriteToFiles(
                path=directory,
                file_naming=_pane_file_naming(name),
                shards=1,
                max_writers_per_bundle=0,  # every line through the sharded writer, which knows its pane
            )
        )


class WritePredictionsText(beam.PTransform):
    """Predictions (JSON-lines strings) in files under `prefix` (per window in a streaming job)."""

    def __init__(self, prefix: str, window_s: int | None = None):
        super().__init__()
        self._prefix = prefix
        self._window_s = window_s

    def expand(self, lines):
        return lines | "Write lines" >> _WriteLines(self._prefix, self._window_s)


class WriteDeadLettersText(beam.PTransform):
    """Dead letters as JSON lines in files under `prefix` (per window in a streaming job)."""

    def __init__(self, prefix: str, window_s: int | None = None, vertex: RowLayout | None = None):
        super().__init__()
        self._prefix = prefix
        self._window_s = window_s
        self._vertex = vertex

    def expand(self, dead_letters):
        return (
            dead_letters
            | "Count and format" >> beam.ParDo(_CountDeadLettersFn(as_json_lines=True, vertex=self._vertex))
            | "Write lines" >> _WriteLines(self._prefix, self._window_s)
        )


def _write_table(
    table: str, schema: dict[str, Any], project: str | None, streaming: bool, new_only: bool = False
) -> WriteToBigQuery:
    """A batch job loads files into a table it truncates (a load refused for a row's content names it:
    `load_errors`), or, `new_only`, into a table that must be empty (Vertex AI writes new tables only: one
    made after the launch checked is not replaced); a streaming one adds rows as they come."""
    if streaming:
        return WriteToBigQuery(
            table,
            schema=schema,
            project=project,
            method=WriteToBigQuery.Method.STREAMING_INSERTS,
            create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
            write_disposition=BigQueryDisposition.WRITE_APPEND,
            insert_retry_strategy=INSERT_RETRY,  # a row refused for good is handed back, not retried for ever
        )
    return WriteToBigQuery(
        table,
        schema=schema,
        project=project,
        method=WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_EMPTY if new_only else BigQueryDisposition.WRITE_TRUNCATE,
    )


class WritePredictionsBigQuery(beam.PTransform):
    """Predictions (rows) into a table created if needed: truncated on write by batch file loads, or
    added to by streaming inserts. Gives back a TableWrite: Beam's result, and the rows the table
    refused for good as dead letters (streaming; a batch load is refused as a whole). `new_only`: into an
    empty table only (Vertex AI's new tables)."""

    def __init__(
        self,
        table: str,
        schema: dict[str, Any],
        project: str | None = None,
        streaming: bool = False,
        new_only: bool = False,
    ):
        super().__init__()
        self._table = table
        self._schema = schema
        self._project = project
        self._streaming = streaming
        self._new_only = new_only

    def expand(self, rows):
        write = _write_table(self._table, self._schema, self._project, self._streaming, self._new_only)
        result = rows | "Write table" >> write
        if self._streaming:
            refused = result.failed_rows_with_errors | "Refused rows" >> RefusedRows()
        else:
            refused = rows.pipeline | "No refused rows" >> beam.Create([]).with_output_types(DeadLetter)
        return TableWrite(result, refused)


class WriteDeadLettersBigQuery(beam.PTransform):
    """Dead letters into `<output>_error_records`: Google's error-record fields plus origin, reason; or
    Vertex AI's errors table (`vertex`): the key or instance columns of the predictions table, then `errors`."""

    def __init__(
        self,
        table: str,
        project: str | None = None,
        streaming: bool = False,
        vertex: RowLayout | None = None,
        new_only: bool = False,
    ):
        super().__init__()
        self._table = table
        self._project = project
        self._streaming = streaming
        self._vertex = vertex
        self._new_only = new_only

    def expand(self, dead_letters):
        schema = self._vertex.dead_letter_schema() if self._vertex is not None else DEAD_LETTER_SCHEMA
        result = (
            dead_letters
            | "Count and format" >> beam.ParDo(_CountDeadLettersFn(as_json_lines=False, vertex=self._vertex))
            | "Write table" >> _write_table(self._table, schema, self._project, self._streaming, self._new_only)
        )
        if self._streaming:
            _ = result.failed_rows_with_errors | "Refused dead letters" >> LogRefusedDeadLetters()
        return result


def _messages(text: str) -> list[bytes]:
    """A JSON-lines string (a batch's rows) as one message body per line."""
    return [line.encode("utf-8") for line in text.split("\n") if line]


class WritePredictionsPubSub(beam.PTransform):
    """Predictions to a Pub/Sub topic, one message per prediction: its JSON row, as the text sink writes it."""

    def __init__(self, topic: str):
        super().__init__()
        self._topic = topic

    def expand(self, lines):
        return (
            lines | "One message per row" >> beam.FlatMap(_messages) | "Publish" >> beam.io.WriteToPubSub(self._topic)
        )


class WriteDeadLettersPubSub(beam.PTransform):
    """Dead letters to a Pub/Sub topic, one message each: the dead-letter row as JSON."""

    def __init__(self, topic: str, vertex: RowLayout | None = None):
        super().__init__()
        self._topic = topic
        self._vertex = vertex

    def expand(self, dead_letters):
        return (
            dead_letters
            | "Count and format" >> beam.ParDo(_CountDeadLettersFn(as_json_lines=True, vertex=self._vertex))
            | "One message per row" >> beam.FlatMap(_messages)
            | "Publish" >> beam.io.WriteToPubSub(self._topic)
        )
