"""Sinks: PTransforms that count, format and write predictions or dead letters.

Formatting happens here, per batch, with the row plan of `rows`; the two kinds of sink differ
only in how rows are written.
"""

from __future__ import annotations

import re

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery

from pipeline import metrics, progress
from pipeline.batches import ScoredBatch
from pipeline.options import LaunchError, first_line
from pipeline.records import DeadLetter
from pipeline.retries import retrying
from pipeline.rows import RowPlan, json_lines
from pipeline.validation import JobConfig

TEXT_SUFFIX = ".jsonl"
UNWRITABLE = "unwritable"

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


def clear_text_output(prefix: str) -> list[str]:
    """Deletes what an earlier run left under a text prefix: its shards and Beam's temp folders.

    Beam replaces only shards of the same count, so a rerun that makes fewer shards would
    leave stale ones beside its own; and a killed run leaves `beam-temp-*` folders. Clearing
    both at launch makes a text output behave like a truncated table: it holds one run.
    """
    directory, name = FileSystems.split(prefix)
    patterns = [
        f"{prefix}-*-of-*{TEXT_SUFFIX}",
        FileSystems.join(directory, f"beam-temp-{name}-*"),
        FileSystems.join(directory, f"beam-temp-{name}-*", "*"),
    ]
    # Globs are broad (`[0-9]*` is one digit, then anything): keep exactly this prefix's shards
    # and Beam's temp folders for it (`beam-temp-<name>-<uuid1 hex>`), never a longer prefix's.
    shard = re.compile(re.escape(name) + r"-\d+-of-\d+" + re.escape(TEXT_SUFFIX))
    temp = re.compile(r"beam-temp-" + re.escape(name) + r"-[0-9a-f]{32}")

    def is_stale(path: str) -> bool:
        parent, base = FileSystems.split(path.rstrip("/"))
        return bool(shard.fullmatch(base) or temp.fullmatch(base) or temp.fullmatch(FileSystems.split(parent)[1]))

    found = {meta.path for result in FileSystems.match(patterns) for meta in result.metadata_list}
    stale = sorted(filter(is_stale, found), key=len, reverse=True)  # a temp folder's files before it
    if stale:
        FileSystems.delete(stale)
    return stale


def clear_table_output(flag: str, table: str, project: str | None) -> bool:
    """Empties a BigQuery output table left by an earlier run; True if there was one.

    WRITE_TRUNCATE replaces a table only when a load job runs, and none runs for an output
    that gets no rows (say, no dead letters this time): the earlier run's rows would stay.
    TRUNCATE keeps the table's schema, description and access settings.
    """
    from google.api_core import exceptions

    from pipeline.table_checks import bigquery_client, table_parts

    table_project, dataset, table_id = table_parts(flag, table, project)
    client = bigquery_client(table_project)
    reference = f"{table_project}.{dataset}.{table_id}"
    try:
        retrying(lambda: client.get_table(reference), "tables.get")
    except exceptions.NotFound:
        return False
    retrying(lambda: client.query(f"TRUNCATE TABLE `{reference}`").result(), "TRUNCATE TABLE")
    return True


def clear_earlier_run(config: JobConfig) -> list[str]:
    """Empties the outputs an earlier run of the same command left; returns what it did, to print."""
    done = []
    for flag, kind, location in (
        ("--output", config.sink, config.output),
        ("--dead_letter", config.dead_letter_kind, config.dead_letter),
    ):
        try:
            if kind == "text" and (removed := clear_text_output(location)):
                done.append(f"Cleared {len(removed)} leftover file(s) of an earlier run under {location}")
            elif kind == "bigquery" and clear_table_output(flag, location, config.project):
                done.append(f"Emptied table {location} of an earlier run")
        except LaunchError:
            raise
        except Exception as error:  # no permission to delete or truncate, ...
            raise LaunchError(f"{flag}={location}: cannot clear an earlier run's output: {first_line(error)}") from None
    return done


class _FormatRowsFn(beam.DoFn):
    """Turns a batch of model outputs into rows (one JSON-lines string per batch for a text sink), counts
    the predictions, notes when the first was made, and dead-letters the instances that make no row."""

    def __init__(self, plan: RowPlan, as_json_lines: bool):
        self._plan = plan
        self._as_json_lines = as_json_lines
        self._predictions = metrics.counter(metrics.PREDICTIONS)
        self._first_prediction = metrics.first_prediction_clock()

    def process(self, scored: ScoredBatch):
        kept, letters = self._plan.split(scored)
        rows, more_letters = self._plan.rows(kept) if kept is not None else ([], [])
        for letter in letters + more_letters:
            yield beam.pvalue.TaggedOutput(UNWRITABLE, letter)
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

    def __init__(self, plan: RowPlan, as_json_lines: bool):
        super().__init__()
        self._plan = plan
        self._as_json_lines = as_json_lines

    def expand(self, scored):
        formatted = scored | "Format" >> beam.ParDo(_FormatRowsFn(self._plan, self._as_json_lines)).with_outputs(
            UNWRITABLE, main="rows"
        )
        return formatted.rows, formatted[UNWRITABLE]


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
