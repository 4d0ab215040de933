"""Beam counters that account for every record, and the run summary read back from them.

records_read = predictions + dead_letters, always (less the records a UDF dropped, plus those it added by
splitting one); dead letters are also counted by reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from apache_beam.metrics.metric import Metrics, MetricsFilter

NAMESPACE = "batch_prediction"
RECORDS_READ = "records_read"
PREDICTIONS = "predictions"
DEAD_LETTERS = "dead_letters"
DEAD_LETTER_REASON_PREFIX = "dead_letters."
# Dead letters their own sink refused for good: logged and counted, never retried without end.
DEAD_LETTERS_REFUSED = "dead_letters_refused"
FIRST_PREDICTION_MS = "first_prediction_unix_ms"
# Records a UDF before the model dropped on purpose (returned None), and those it added by splitting one.
UDF_DROPPED = "udf_dropped"
UDF_ADDED = "udf_added"
REPLACED_PREFIX = "replaced."  # what a batch job's last step did to the earlier outputs (job.replace)


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


def first_prediction_clock():
    """A distribution whose minimum is the wall-clock time (ms) of the first prediction."""
    return Metrics.distribution(NAMESPACE, FIRST_PREDICTION_MS)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class RunCounts:
    records_read: int = 0
    predictions: int = 0
    dead_letters: int = 0
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    first_prediction_unix_ms: int | None = None
    replaced: dict[str, int] = field(default_factory=dict)  # by counter name, after REPLACED_PREFIX
    udf_dropped: int = 0
    udf_added: int = 0

    @property
    def reconciles(self) -> bool:
        return self.records_read - self.udf_dropped + self.udf_added == self.predictions + self.dead_letters


def read_counts(result) -> RunCounts:
    """The job's counters, committed values where the runner has them."""
    metrics = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    counts = RunCounts()
    for item in metrics["counters"]:
        name = item.key.metric.name
        value = item.committed if item.committed is not None else item.attempted
        if name == RECORDS_READ:
            counts.records_read += value
        elif name == PREDICTIONS:
            counts.predictions += value
        elif name == DEAD_LETTERS:
            counts.dead_letters += value
        elif name == UDF_DROPPED:
            counts.udf_dropped += value
        elif name == UDF_ADDED:
            counts.udf_added += value
        elif name.startswith(DEAD_LETTER_REASON_PREFIX):
            reason = name[len(DEAD_LETTER_REASON_PREFIX) :]
            counts.dead_letters_by_reason[reason] = counts.dead_letters_by_reason.get(reason, 0) + value
        elif name.startswith(REPLACED_PREFIX):
            what = name[len(REPLACED_PREFIX) :]
            counts.replaced[what] = counts.replaced.get(what, 0) + value
    for item in metrics["distributions"]:
        if item.key.metric.name == FIRST_PREDICTION_MS:
            value = item.committed if item.committed is not None else item.attempted
            if value is not None and value.count:
                earliest = value.min
                if counts.first_prediction_unix_ms is None or earliest < counts.first_prediction_unix_ms:
                    counts.first_prediction_unix_ms = earliest
    return counts
