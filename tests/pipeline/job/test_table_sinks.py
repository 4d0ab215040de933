"""What a table refuses: a row refused for good is a dead letter with BigQuery's reason and the stream goes on;
a transient error is retried and the row lands once; a refused dead letter is counted and logged, not retried.

The streaming writes run on Beam's local streaming runner against the BigQuery emulator, behind a
fault-injecting proxy (tests/fault_proxy.py) that answers `tabledata.insertAll` as BigQuery does when it
refuses a row: the emulator never refuses one itself.
"""

from __future__ import annotations

import json
import logging

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to

from pipeline.data.dead_letters import Reason
from pipeline.job import metrics, progress
from pipeline.job.sinks import WritePredictionsBigQuery
from pipeline.job.table_sinks import LogRefusedDeadLetters, RefusedRows, refusal
from tests.fault_proxy import SCRIPTED, Request, Rule, refuse_rows

DATASET = "table_sinks"
SCHEMA = {
    "fields": [
        {"name": "key", "type": "INTEGER", "mode": "REQUIRED"},
        {"name": "confidence", "type": "FLOAT", "mode": "REQUIRED"},
    ]
}
OUT_OF_RANGE = {"reason": "invalid", "location": "confidence", "message": "Value is out of range (injected)"}


def insert_all(table: str) -> str:
    return rf"/bigquery/v2/projects/[^/]+/datasets/{DATASET}/tables/{table}/insertAll$"


def holds_key(key: int):
    """A rule predicate: an insertAll request that holds the row with `key`."""
    return lambda request: any(row["json"]["key"] == key for row in json.loads(request.body)["rows"])


def counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE).with_name(name))["counters"]
    return sum(item.committed if item.committed is not None else item.attempted for item in found)


def test_a_refusal_names_each_of_bigquerys_errors():
    second = {"reason": "stopped", "message": "Row was not inserted"}
    assert refusal([OUT_OF_RANGE, second]) == (
        "invalid (confidence): Value is out of range (injected); stopped: Row was not inserted"
    )
    assert refusal([{"reason": "Bad Request", "message": "the whole request"}]) == "Bad Request: the whole request"


def test_a_refused_prediction_row_is_a_dead_letter_that_takes_its_prediction_back():
    progress.TALLIES.reset()
    pipeline = beam.Pipeline()
    refused = (
        pipeline
        | beam.Create([("p:d.t", {"key": 3, "confidence": 2.0}, [OUT_OF_RANGE])])
        | RefusedRows()
        | beam.Map(lambda letter: (letter.origin, letter.reason, letter.message, json.loads(letter.payload)))
    )
    message = "BigQuery refused the row for good: invalid (confidence): Value is out of range (injected)"
    assert_that(refused, equal_to([("p:d.t", Reason.OUTPUT_REJECTED, message, {"key": 3, "confidence": 2.0})]))
    result = pipeline.run()
    result.wait_until_finish()
    assert counter(result, metrics.PREDICTIONS) == -1  # counted when formatted, taken back: the books balance
    assert progress.TALLIES.counts().predictions == -1


def test_refused_dead_letters_are_counted_each_and_logged_at_most_once_a_minute(caplog):
    failed = [
        ("p:d.t_error_records", {"reason": "missing_key", "origin": f"in{n}.txt"}, [OUT_OF_RANGE]) for n in range(3)
    ]
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(failed) | LogRefusedDeadLetters()
    with caplog.at_level(logging.ERROR, logger="pipeline.job.table_sinks"):
        result = pipeline.run()
        result.wait_until_finish()
    assert counter(result, metrics.DEAD_LETTERS_REFUSED) == 3
    logged = [record.getMessage() for record in caplog.records if record.name == "pipeline.job.table_sinks"]
    assert len(logged) == 1, logged
    assert logged[0].startswith("p:d.t_error_records refused 1 dead letter(s) for good")
    assert "dead_letters_refused" in logged[0] and "invalid (confidence)" in logged[0]


# --------------------------------------------------------------------------------------------
# Streaming inserts through the emulator, behind a proxy
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bq(cloud_emulators):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset(DATASET, exists_ok=True)
    return client


def rows_of(client, table: str) -> list[int]:
    return sorted(row["key"] for row in client.query(f"SELECT key FROM {DATASET}.{table}").result())


def stream_rows(cloud_emulators, table: str, expected_refused: list) -> None:
    """Rows 0-4, then (the watermark moved on) rows 5-9, inserted by a streaming write of `table`."""
    stream = (
        test_stream.TestStream()
        .add_elements([{"key": key, "confidence": 0.5} for key in range(5)])
        .advance_watermark_to(10)
        .add_elements([{"key": key, "confidence": 0.5} for key in range(5, 10)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions([*cloud_emulators.beam_options(), "--streaming"])
    with beam.Pipeline(options=options) as pipeline:
        written = (
            pipeline | stream | WritePredictionsBigQuery(f"{DATASET}.{table}", SCHEMA, cloud_emulators.project, True)
        )
        described = written.refused | beam.Map(
            lambda letter: (letter.reason, letter.message, json.loads(letter.payload)["key"], letter.origin)
        )
        assert_that(described, equal_to(expected_refused))


@pytest.mark.emulators
def test_a_row_refused_for_good_is_a_dead_letter_with_bigquerys_reason_and_the_stream_goes_on(
    cloud_emulators, bq, faulty_clouds
):
    refuse = Rule(
        kinds=(SCRIPTED,),
        method="POST",
        path=insert_all("refusing"),
        when=holds_key(3),
        script=refuse_rows(lambda row: tuple(OUT_OF_RANGE.values()) if row["key"] == 3 else None),
        max_in_a_row=100,
        name="insertAll refuses key 3",
    )
    message = "BigQuery refused the row for good: invalid (confidence): Value is out of range (injected)"
    table = f"{cloud_emulators.project}:{DATASET}.refusing"
    with faulty_clouds.through(bq=[refuse]):
        stream_rows(cloud_emulators, "refusing", [(Reason.OUTPUT_REJECTED, message, 3, table)])
    assert refuse.injected == 1, "the refused row was sent again: Beam retried a permanent error"
    assert rows_of(bq, "refusing") == [0, 1, 2, 4, 5, 6, 7, 8, 9]


@pytest.mark.emulators
def test_transient_insert_errors_are_retried_and_each_row_lands_once(cloud_emulators, bq, faulty_clouds):
    row_error = Rule(
        kinds=(SCRIPTED,),
        method="POST",
        path=insert_all("retried"),
        when=holds_key(6),
        script=refuse_rows(lambda row: ("backendError", "", "Backend error (injected)") if row["key"] == 6 else None),
        first=1,
        name="insertAll: a row's backendError",
    )
    outage = Rule(kinds=("503",), method="POST", path=insert_all("retried"), first=1, name="insertAll: 503")

    def sent_row(request: Request) -> bool:
        return bool(json.loads(request.body)["rows"])

    outage.when = sent_row
    with faulty_clouds.through(bq=[outage, row_error]):
        stream_rows(cloud_emulators, "retried", [])
    assert (outage.injected, row_error.injected) == (1, 1)
    assert row_error.matched >= 2, "the row refused for now was not sent again"
    assert rows_of(bq, "retried") == list(range(10))
