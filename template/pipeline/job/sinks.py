"""Sinks: PTransforms that count, format and write predictions or dead letters.

Formatting happens here, per batch, with the row layout of `data.rows`; the two kinds of sink differ
only in how rows are written.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery

from pipeline.config import TEXT_SUFFIX
from pipeline.data.batches import ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.rows import RowLayout, json_lines
from pipeline.job import metrics, progress
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
    the predictions, notes when the first was made, and dead-letters the instances that make no row."""

    def __init__(self, layout: RowLayout, as_json_lines: bool):
        self._layout = layout
        self._as_json_lines = as_json_lines
        self._predictions = metrics.counter(metrics.PREDICTIONS)
        self._first_prediction = metrics.first_prediction_clock()

    def process(self, scored: ScoredBatch):
        kept, letters = self._layout.split(scored)
        rows, more_letters = self._layout.rows(kept) if kept is not None else ([], [])
        for letter in letters + more_letters:
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
        if not rows:
            return
        self._predictions.inc(len(rows))
        progress.records_done(len(rows))
        self._first_prediction.update(metrics.now_ms())
        if self._as_json_lines:
            yield json_lines(rows)  # one element per batch: one line per record
        else:
            yield from rows


class FormatRows(beam.PTransform):
    """ScoredBatches in; rows out (JSON-lines strings or BigQuery rows), and dead letters for the
    instances whose outputs cannot be written (NaN or infinite, not UTF-8, an included field that
    does not fit its column)."""

    def __init__(self, layout: RowLayout, as_json_lines: bool):
        super().__init__()
        self._layout = layout
        self._as_json_lines = as_json_lines

    def expand(self, scored):
        formatted = scored | "Format" >> beam.ParDo(_FormatRowsFn(self._layout, self._as_json_lines)).with_outputs(
            DEAD_LETTERS, main="rows"
        )
        return formatted.rows, formatted[DEAD_LETTERS]


class _CountDeadLettersFn(beam.DoFn):
    def __init__(self, as_json_lines: bool):
        self._as_json_lines = as_json_lines
        self._total = metrics.counter(metrics.DEAD_LETTERS)
        self._by_reason: dict = {}

    def process(self, dead_letter: DeadLetter):
        self._total.inc()
        progress.records_done(1)
        reason_counter = self._by_reason.get(dead_letter.reason)
        if reason_counter is None:
            reason_counter = metrics.counter(metrics.DEAD_LETTER_REASON_PREFIX + dead_letter.reason)
            self._by_reason[dead_letter.reason] = reason_counter
        reason_counter.inc()
        yield dead_letter.to_json_line() if self._as_json_lines else dead_letter.to_row()


class WritePredictionsText(beam.PTransform):
    """Predictions (JSON-lines strings) in files `<prefix>-SSSSS-of-NNNNN.jsonl`."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def expand(self, lines):
        return lines | "Write files" >> beam.io.WriteToText(self._prefix, file_name_suffix=TEXT_SUFFIX)


class WriteDeadLettersText(beam.PTransform):
    """Dead letters as JSON lines in files `<prefix>-SSSSS-of-NNNNN.jsonl`."""

    def __init__(self, prefix: str):
        super().__init__()
        self._prefix = prefix

    def expand(self, dead_letters):
        return (
            dead_letters
            | "Count and format" >> beam.ParDo(_CountDeadLettersFn(as_json_lines=True))
            | "Write files" >> beam.io.WriteToText(self._prefix, file_name_suffix=TEXT_SUFFIX)
        )


def _write_table(table: str, schema: dict, project: str | None) -> WriteToBigQuery:
    return WriteToBigQuery(
        table,
        schema=schema,
        project=project,
        method=WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_TRUNCATE,
    )


class WritePredictionsBigQuery(beam.PTransform):
    """Predictions (rows) into a table created if needed and truncated on write (batch file loads)."""

    def __init__(self, table: str, schema: dict, project: str | None = None):
        super().__init__()
        self._table = table
        self._schema = schema
        self._project = project

    def expand(self, rows):
        return rows | "Write table" >> _write_table(self._table, self._schema, self._project)


class WriteDeadLettersBigQuery(beam.PTransform):
    """Dead letters into `<output>_error_records`: Google's error-record fields plus origin, reason."""

    def __init__(self, table: str, project: str | None = None):
        super().__init__()
        self._table = table
        self._project = project

    def expand(self, dead_letters):
        return (
            dead_letters
            | "Count and format" >> beam.ParDo(_CountDeadLettersFn(as_json_lines=False))
            | "Write table" >> _write_table(self._table, DEAD_LETTER_SCHEMA, self._project)
        )
