"""What a BigQuery table refuses, for now or for good.

Streaming inserts are retried by Beam only on transient errors (`RETRY_ON_TRANSIENT_ERROR`: a timeout,
a backend error, a 5xx), with back-off; a row BigQuery refuses for its content (reason `invalid`: a
value out of range, a row too large, a column that changed) is handed back at once, in the write's
`failed_rows_with_errors`, and the stream goes on. Retrying it would stall the stream for ever.

A refused prediction row becomes an `output_rejected` dead letter with BigQuery's reason and
message. A refused dead letter cannot become another one: it is counted (`dead_letters_refused`)
and logged, at most once a minute per worker process with how many were refused since.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
from apache_beam.io.gcp.bigquery_tools import RetryStrategy

from pipeline.data.dead_letters import DeadLetter, Reason, utc_now
from pipeline.job import metrics, progress

INSERT_RETRY = RetryStrategy.RETRY_ON_TRANSIENT_ERROR
LOG_EVERY_S = 60.0
_LOGGER = logging.getLogger(__name__)


class TableWrite(NamedTuple):
    """What writing predictions to a table gives back: Beam's own WriteResult, and the rows the table
    refused for good as dead letters (none in a batch job, whose load fails as a whole)."""

    result: Any
    refused: beam.PCollection


def refusal(errors: list[dict[str, Any]]) -> str:
    """BigQuery's errors for one row, in one line: `reason (location): message; ...`."""
    parts = []
    for error in errors:
        where = f" ({error['location']})" if error.get("location") else ""
        parts.append(f"{error.get('reason') or 'no reason'}{where}: {error.get('message') or 'no message'}")
    return "; ".join(parts) or "no error given"


class _RefusedRowFn(beam.DoFn):
    """A prediction row the table refused for good, as a dead letter holding the row. The row was counted as a
    prediction when it was formatted: that is taken back, so that records_read = predictions + dead_letters."""

    def __init__(self):
        self._predictions = metrics.counter(metrics.PREDICTIONS)

    def process(self, failed: tuple[Any, dict[str, Any], list[dict[str, Any]]]):
        table, row, errors = failed
        self._predictions.dec()
        progress.predictions_done(-1)
        message = f"BigQuery refused the row for good: {refusal(errors)}"
        yield DeadLetter(
            str(table), orjson.dumps(row, default=str), Reason.OUTPUT_REJECTED, message, timestamp=utc_now()
        )


class RefusedRows(beam.PTransform):
    """A streaming write's `failed_rows_with_errors` (table, row, errors) as `output_rejected` dead letters."""

    def expand(self, failed):
        return failed | "As dead letters" >> beam.ParDo(_RefusedRowFn())


class _LogRefusedDeadLettersFn(beam.DoFn):
    """Counts each dead letter its table refused, and logs them at most once per LOG_EVERY_S: a stream of
    refusals (a dead-letter table whose columns changed) must not flood the job's log."""

    def __init__(self):
        self._refused = metrics.counter(metrics.DEAD_LETTERS_REFUSED)

    def setup(self):
        self._logged_at: float | None = None
        self._since = 0

    def process(self, failed: tuple[Any, dict[str, Any], list[dict[str, Any]]]):
        table, row, errors = failed
        self._refused.inc()
        self._since += 1
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < LOG_EVERY_S:
            return
        _LOGGER.error(
            "%s refused %d dead letter(s) for good; they are dropped and counted in %s. The latest (reason %s, "
            "origin %s): %s",
            table,
            self._since,
            metrics.DEAD_LETTERS_REFUSED,
            row.get("reason"),
            row.get("origin"),
            refusal(errors),
        )
        self._logged_at, self._since = now, 0


class LogRefusedDeadLetters(beam.PTransform):
    """A dead-letter table's `failed_rows_with_errors`: counted and logged (rate-limited), never retried."""

    def expand(self, failed):
        return failed | "Count and log" >> beam.ParDo(_LogRefusedDeadLettersFn())
