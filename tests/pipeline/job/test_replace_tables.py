"""A table that got no rows this run, emptied by the job's last step: only an earlier run's, on the BigQuery
emulator through the real client."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from pipeline.job.replace_tables import changed_since, empty_table, table_name

pytestmark = pytest.mark.emulators

DATASET = "replace_tables"


@pytest.fixture(scope="module")
def bq(cloud_emulators):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset(DATASET, exists_ok=True)
    return client


def count(bq, table: str) -> int:
    return next(iter(bq.query(f"SELECT COUNT(*) FROM {table}").result()))[0]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ds.t", "job-project.ds.t"),
        ("other:ds.t", "other.ds.t"),
        ("other.ds.t", "other.ds.t"),
        ("example.com:other:ds.t", "example.com:other.ds.t"),
    ],
)
def test_a_table_is_named_as_the_write_reads_its_spec(spec, expected):
    assert table_name(spec, "job-project") == expected


def test_a_table_changed_since_the_run_started_is_another_runs():
    started = 1_800_000_000.0
    assert changed_since(datetime.fromtimestamp(started + 1, UTC), started)
    assert not changed_since(datetime.fromtimestamp(started - 1, UTC), started)
    assert not changed_since(None, started)


def test_an_earlier_runs_table_is_emptied_and_keeps_its_schema(bq, cloud_emulators):
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.earlier AS SELECT 1 AS key, 'x' AS reason").result()
    time.sleep(0.01)
    assert empty_table(f"{DATASET}.earlier", cloud_emulators.project, time.time())
    assert count(bq, f"{DATASET}.earlier") == 0
    schema = bq.get_table(f"{cloud_emulators.project}.{DATASET}.earlier").schema
    assert [field.name for field in schema] == ["key", "reason"]


def test_a_table_changed_after_the_run_started_is_left_as_it_is(bq, cloud_emulators, caplog):
    started = time.time()
    time.sleep(0.01)
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.newer AS SELECT 1 AS key").result()
    assert not empty_table(f"{DATASET}.newer", cloud_emulators.project, started)
    assert count(bq, f"{DATASET}.newer") == 1
    assert "changed since it started; left as it is" in caplog.text


def test_no_table_is_nothing_to_empty_and_none_is_made(bq, cloud_emulators):
    assert not empty_table(f"{DATASET}.never_written", cloud_emulators.project, time.time())
    assert "never_written" not in {table.table_id for table in bq.list_tables(DATASET)}


def test_a_partition_is_never_emptied_as_a_whole_table(bq, cloud_emulators):
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.partitioned AS SELECT 1 AS key").result()
    assert not empty_table(f"{DATASET}.partitioned$20240101", cloud_emulators.project, time.time())
    assert count(bq, f"{DATASET}.partitioned") == 1
