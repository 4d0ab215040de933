"""Sinks: the writers (text files, per event-time window in a stream; BigQuery and Pub/Sub through their
emulators), and the dead letters they count, by reason."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.job.metrics import read_counts
from pipeline.job.sinks import (
    DEAD_LETTER_SCHEMA,
    WriteDeadLettersBigQuery,
    WriteDeadLettersPubSub,
    WriteDeadLettersText,
    WritePredictionsBigQuery,
    WritePredictionsPubSub,
    WritePredictionsText,
)
from pipeline.job.sources import BatchMessages
from tests.outputs import read_json_lines

T0 = 1_700_000_000  # a window boundary for windows of 10 s: 2023-11-14T22:13:20
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"
WINDOW_FILE = re.compile(rf"^predictions-({ISO})-({ISO})-(\d+)-(\d{{5}})-of-(\d{{5}})\.jsonl$")


def letter(reason: str, payload: bytes = b"x") -> DeadLetter:
    return DeadLetter("in.txt", payload, reason, f"because {reason}", timestamp="2026-01-01T00:00:00.000+00:00")


def iso(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(tzinfo=None).isoformat()


def test_dead_letter_schema_follows_googles_error_records():
    names = [field["name"] for field in DEAD_LETTER_SCHEMA["fields"]]
    assert {"timestamp", "payloadString", "payloadBytes", "errorMessage", "stacktrace"} <= set(names)


def test_a_batch_job_writes_one_complete_set_of_files(tmp_path):
    with beam.Pipeline() as pipeline:
        lines = pipeline | beam.Create(['{"key":1}\n{"key":2}', '{"key":3}'])
        _ = lines | WritePredictionsText(str(tmp_path / "predictions"))
    assert [path.name for path in tmp_path.glob("predictions-*")] == ["predictions-00000-of-00001.jsonl"]
    assert sorted(row["key"] for row in read_json_lines(tmp_path / "predictions-*.jsonl")) == [1, 2, 3]


@pytest.mark.parametrize("vertex", [False, True], ids=["google-error-records", "vertex-ai"])
def test_dead_letters_are_counted_by_reason_and_written_one_line_each(tmp_path, vertex):
    letters = [letter(Reason.MISSING_KEY), letter(Reason.NOT_UTF8, b"\xff"), letter(Reason.MISSING_KEY)]
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(letters) | WriteDeadLettersText(str(tmp_path / "errors"), vertex=vertex)
    result = pipeline.run()
    result.wait_until_finish()
    counts = read_counts(result)
    assert counts.dead_letters == 3
    assert counts.dead_letters_by_reason == {Reason.MISSING_KEY: 2, Reason.NOT_UTF8: 1}
    assert len(read_json_lines(tmp_path / "errors-*.jsonl")) == 3


def published(at: float, key: int) -> TimestampedValue:
    """A message as ReadFromPubSub gives it, timestamped with its publish time."""
    return TimestampedValue(PubsubMessage(str(key).encode(), {}, message_id=str(key)), T0 + at)


def windowed_files(directory: Path) -> dict[tuple[str, str, int], list[int]]:
    """(window start, window end, pane) -> the keys in that file, for every file of windowed predictions."""
    files = {}
    for path in directory.glob("predictions-*.jsonl"):
        match = WINDOW_FILE.match(path.name)
        assert match, path.name
        start, end, pane, shard, shards = match.groups()
        assert (shard, shards) == ("00000", "00001")
        files[(start, end, int(pane))] = sorted(row["key"] for row in read_json_lines(path))
    return files


def test_a_stream_is_written_per_window_of_publish_time_however_late_its_messages_are_read(tmp_path):
    """Messages batched as the job batches them, formatted to lines, written: each in the file of the window
    it was published in. A backlog read long after its window ended on the clock lands in that window; a
    message read after its window's file was written lands in a second file of that window, not over it."""
    stream = (
        test_stream.TestStream()
        .add_elements([published(1, 1), published(2, 2)])
        .advance_processing_time(60)  # the rest of the first window is read a minute later
        .add_elements([published(3, 3), published(12, 12)])
        .advance_watermark_to(T0 + 25)  # the first two windows are written
        .add_elements([published(5, 5), published(21, 21)])  # 5 is behind the watermark
        .advance_watermark_to(T0 + 35)
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as pipeline:
        lines = (
            pipeline
            | stream
            | BatchMessages("projects/p/subscriptions/s", 3, max_wait_s=0.5, window_s=10)
            | "Format" >> beam.Map(lambda batch: "\n".join(json.dumps({"key": int(body)}) for body in batch.payloads))
        )
        _ = lines | WritePredictionsText(str(tmp_path / "predictions"), window_s=10)
    assert windowed_files(tmp_path) == {
        (iso(T0), iso(T0 + 10), 0): [1, 2, 3],
        (iso(T0 + 10), iso(T0 + 20), 0): [12],
        (iso(T0), iso(T0 + 10), 1): [5],
        (iso(T0 + 20), iso(T0 + 30), 0): [21],
    }


def test_dead_letters_of_a_stream_are_written_per_window_of_their_timestamp(tmp_path):
    stream = (
        test_stream.TestStream()
        .add_elements([TimestampedValue(letter(Reason.MISSING_KEY), T0 + 1)])
        .add_elements([TimestampedValue(letter(Reason.BAD_KEY), T0 + 11)])
        .advance_watermark_to_infinity()
    )
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as pipeline:
        _ = pipeline | stream | WriteDeadLettersText(str(tmp_path / "errors"), window_s=10)
    by_window = {path.name.split("-00000-of-")[0]: read_json_lines(path) for path in tmp_path.glob("errors-*.jsonl")}
    assert {name: [row["reason"] for row in rows] for name, rows in by_window.items()} == {
        f"errors-{iso(T0)}-{iso(T0 + 10)}-0": [Reason.MISSING_KEY],
        f"errors-{iso(T0 + 10)}-{iso(T0 + 20)}-0": [Reason.BAD_KEY],
    }


@pytest.mark.emulators
def test_pubsub_sinks_publish_one_message_per_row(pubsub_emulator):
    topics = {name: pubsub_emulator.topic(f"sinks-{name}") for name in ("out", "errors")}
    subscriptions = {name: pubsub_emulator.subscription(f"sinks-{name}-sub", topic) for name, topic in topics.items()}
    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as pipeline:
        lines = pipeline | "Lines" >> beam.Create(['{"key":1}\n{"key":2}', '{"key":3}'])
        _ = lines | WritePredictionsPubSub(topics["out"])
        letters = pipeline | "Letters" >> beam.Create([letter(Reason.MISSING_KEY)])
        _ = letters | WriteDeadLettersPubSub(topics["errors"])
    subscriber = pubsub_emulator.subscriber()

    def pulled(name: str, count: int) -> list[dict]:
        rows: list[dict] = []
        for _ in range(20):
            response = subscriber.pull(subscription=subscriptions[name], max_messages=100, timeout=5)
            rows += [json.loads(received.message.data) for received in response.received_messages]
            if response.received_messages:
                ack_ids = [received.ack_id for received in response.received_messages]
                subscriber.acknowledge(subscription=subscriptions[name], ack_ids=ack_ids)
            if len(rows) >= count:
                break
        return rows

    assert sorted(row["key"] for row in pulled("out", 3)) == [1, 2, 3]
    assert [(row["reason"], row["payloadString"]) for row in pulled("errors", 1)] == [(Reason.MISSING_KEY, "x")]


@pytest.mark.emulators
def test_a_batch_job_loads_predictions_and_dead_letters_into_tables_and_refuses_no_row(cloud_emulators):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("sinks", exists_ok=True)
    schema = {"fields": [{"name": "key", "type": "INTEGER", "mode": "REQUIRED"}]}
    with beam.Pipeline(options=PipelineOptions(cloud_emulators.beam_options())) as pipeline:
        rows = pipeline | "Rows" >> beam.Create([{"key": 1}, {"key": 2}])
        written = rows | WritePredictionsBigQuery("sinks.loaded", schema, cloud_emulators.project)
        assert_that(written.refused, equal_to([]))
        letters = pipeline | "Letters" >> beam.Create([letter(Reason.NOT_UTF8, b"\xff")])
        _ = letters | WriteDeadLettersBigQuery("sinks.loaded_error_records", cloud_emulators.project)

    def table(name: str) -> list[dict]:
        return [dict(row.items()) for row in client.query(f"SELECT * FROM sinks.{name}").result()]

    assert sorted(row["key"] for row in table("loaded")) == [1, 2]
    (dead_letter,) = table("loaded_error_records")
    assert (dead_letter["reason"], dead_letter["errorMessage"], dead_letter["payloadString"]) == (
        Reason.NOT_UTF8,
        "because not_utf8",
        None,
    )
