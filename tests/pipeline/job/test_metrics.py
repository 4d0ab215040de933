"""The run summary read back from a real pipeline's counters: every record accounted for, once."""

from __future__ import annotations

import time
from types import SimpleNamespace

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import Metrics

from pipeline.job import metrics
from pipeline.job.metrics import RunCounts, read_counts

REASONS = ["wrong_type", "not_json", "wrong_type", "bad_key"]  # of records 1, 3, 5, 7


class _ReadFn(beam.DoFn):
    def __init__(self):
        self._read = metrics.counter(metrics.RECORDS_READ)

    def process(self, record):
        self._read.inc()
        yield record


class _PredictFn(beam.DoFn):
    """Even records are predicted, stamped with the clock value they carry; odd ones are dead letters."""

    def __init__(self):
        self._predictions = metrics.counter(metrics.PREDICTIONS)
        self._dead_letters = metrics.counter(metrics.DEAD_LETTERS)
        self._clock = metrics.first_prediction_clock()

    def process(self, record):
        number, clock_ms = record
        if number % 2 == 0:
            self._predictions.inc()
            self._clock.update(clock_ms)
        else:
            self._dead_letters.inc()
            metrics.counter(metrics.DEAD_LETTER_REASON_PREFIX + REASONS[number // 2]).inc()
        yield number


def run(pipeline_body) -> RunCounts:
    pipeline = beam.Pipeline()
    pipeline_body(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    return read_counts(result)


@pytest.fixture(scope="module")
def counts() -> RunCounts:
    """Two sources (eight records and three), each read and predicted in steps of its own, as a job's branches are;
    plus a counter of the same name in another namespace, which must not count."""

    def body(pipeline):
        first = [(number, 5_000 - number) for number in range(8)]  # earliest even record: 6 -> 4_994
        second = [(0, 7_000), (2, 1_500), (4, 9_000)]
        for label, records in (("first", first), ("second", second)):
            (
                pipeline
                | f"Create {label}" >> beam.Create(records)
                | f"Read {label}" >> beam.ParDo(_ReadFn())
                | f"Predict {label}" >> beam.ParDo(_PredictFn())
            )
        (
            pipeline
            | "Create other" >> beam.Create([1, 2])
            | "Other namespace" >> beam.Map(lambda x: Metrics.counter("other", metrics.RECORDS_READ).inc(100))
        )

    return run(body)


def test_counters_of_every_step_are_summed(counts):
    assert counts.records_read == 11
    assert counts.predictions == 7  # 4 of the first source, 3 of the second
    assert counts.dead_letters == 4


def test_a_run_that_accounts_for_every_record_reconciles(counts):
    assert counts.reconciles


def test_dead_letters_are_counted_by_reason(counts):
    assert counts.dead_letters_by_reason == {"wrong_type": 2, "not_json": 1, "bad_key": 1}
    assert sum(counts.dead_letters_by_reason.values()) == counts.dead_letters


def test_first_prediction_time_is_the_minimum_over_every_step(counts):
    """Each step's distribution has its own minimum (4_994 and 1_500): the job's first prediction is the earlier."""
    assert counts.first_prediction_unix_ms == 1_500


def test_a_run_without_predictions_has_no_first_prediction_time():
    def body(pipeline):
        pipeline | beam.Create([(1, 10), (3, 20)]) | "Read" >> beam.ParDo(_ReadFn()) | beam.ParDo(_PredictFn())

    counts = run(body)
    assert counts.first_prediction_unix_ms is None
    assert (counts.records_read, counts.predictions, counts.dead_letters) == (2, 0, 2)
    assert counts.dead_letters_by_reason == {"wrong_type": 1, "not_json": 1}
    assert counts.reconciles


def test_a_run_that_lost_a_record_does_not_reconcile():
    def body(pipeline):
        records = pipeline | beam.Create([(0, 1), (1, 2), (2, 3)]) | "Read" >> beam.ParDo(_ReadFn())
        records | beam.Filter(lambda record: record[0] != 2) | beam.ParDo(_PredictFn())

    counts = run(body)
    assert (counts.records_read, counts.predictions, counts.dead_letters) == (3, 1, 1)
    assert not counts.reconciles


@pytest.mark.parametrize(
    ("records_read", "predictions", "dead_letters", "reconciles"),
    [(0, 0, 0, True), (10, 7, 3, True), (10, 7, 2, False), (10, 8, 3, False)],
)
def test_reconciles_means_read_equals_predictions_plus_dead_letters(
    records_read, predictions, dead_letters, reconciles
):
    assert RunCounts(records_read, predictions, dead_letters).reconciles is reconciles


def _fake_result(counters, distributions):
    def item(name, committed, attempted):
        key = SimpleNamespace(metric=SimpleNamespace(name=name))
        return SimpleNamespace(key=key, committed=committed, attempted=attempted)

    query_result = {
        "counters": [item(*counter) for counter in counters],
        "distributions": [item(*distribution) for distribution in distributions],
    }
    return SimpleNamespace(metrics=lambda: SimpleNamespace(query=lambda _filter: query_result))


def test_attempted_values_count_where_a_runner_has_no_committed_ones():
    clock = SimpleNamespace(count=2, min=40)
    result = _fake_result(
        [(metrics.RECORDS_READ, None, 5), (metrics.PREDICTIONS, 4, 9), ("dead_letters.not_json", None, 1)],
        [
            (metrics.FIRST_PREDICTION_MS, None, clock),
            (metrics.FIRST_PREDICTION_MS, SimpleNamespace(count=0, min=1), None),
        ],
    )
    counts = read_counts(result)
    assert (counts.records_read, counts.predictions) == (5, 4)  # committed wins where there is one
    assert counts.dead_letters_by_reason == {"not_json": 1}
    assert counts.first_prediction_unix_ms == 40  # an empty distribution's min is no time


def test_what_the_last_step_replaced_is_read_by_counter_name_and_summed():
    result = _fake_result(
        [
            (metrics.REPLACED_PREFIX + "earlier_shards_removed", 2, 2),
            (metrics.REPLACED_PREFIX + "earlier_shards_removed", 1, 1),
            (metrics.REPLACED_PREFIX + "tables_emptied", None, 1),
        ],
        [],
    )
    assert read_counts(result).replaced == {"earlier_shards_removed": 3, "tables_emptied": 1}
    assert read_counts(_fake_result([], [])).replaced == {}


def test_now_ms_is_the_wall_clock_in_milliseconds():
    before = int(time.time() * 1000)
    now = metrics.now_ms()
    assert before <= now <= int(time.time() * 1000)


def test_what_a_udf_dropped_and_added_is_read_and_reconciles_the_counts():
    result = _fake_result(
        [
            (metrics.RECORDS_READ, 10, 10),
            (metrics.UDF_DROPPED, 2, 2),
            (metrics.UDF_ADDED, 3, 3),
            (metrics.UDF_ADDED, 1, 1),
            (metrics.PREDICTIONS, 11, 11),
            (metrics.DEAD_LETTERS, 1, 1),
        ],
        [],
    )
    counts = read_counts(result)
    assert (counts.udf_dropped, counts.udf_added) == (2, 4)
    assert counts.reconciles  # 10 read - 2 dropped + 4 added = 11 predictions + 1 dead letter
    assert not RunCounts(10, 11, 1, udf_dropped=2, udf_added=3).reconciles
