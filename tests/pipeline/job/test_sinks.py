"""Sinks: the writers (text files, per event-time window in a stream; BigQuery and Pub/Sub through their
emulators), and the dead letters they count, by reason."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.instances import KEY_INT, KEY_POSITION
from pipeline.data.rows import VERTEX, RowLayout
from pipeline.data.udf import UdfCode
from pipeline.data.vertex_rows import VertexShape
from pipeline.job.metrics import read_counts
from pipeline.job.sinks import (
    DEAD_LETTER_SCHEMA,
    FormatRows,
    WriteDeadLettersBigQuery,
    WriteDeadLettersPubSub,
    WriteDeadLettersText,
    WritePredictionsBigQuery,
    WritePredictionsPubSub,
    WritePredictionsText,
)
from pipeline.job.sources import BatchMessages
from pipeline.model.signatures import TensorSpec
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


SCORE = TensorSpec("score", "float32", ())
BILL = TensorSpec("bill", "float32", ())
VERTEX_LAYOUT = RowLayout(
    (SCORE,), key_kind=KEY_POSITION, shape=VERTEX, inputs=(BILL,), vertex=VertexShape(keyed=False)
)


@pytest.mark.parametrize("vertex", [None, VERTEX_LAYOUT], ids=["google-error-records", "vertex-ai"])
def test_dead_letters_are_counted_by_reason_and_written_one_line_each(tmp_path, vertex):
    letters = [letter(Reason.MISSING_KEY), letter(Reason.NOT_UTF8, b"\xff"), letter(Reason.MISSING_KEY)]
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create(letters) | WriteDeadLettersText(str(tmp_path / "errors"), vertex=vertex)
    result = pipeline.run()
    result.wait_until_finish()
    counts = read_counts(result)
    assert counts.dead_letters == 3
    assert counts.dead_letters_by_reason == {Reason.MISSING_KEY: 2, Reason.NOT_UTF8: 1}
    lines = read_json_lines(tmp_path / "errors-*.jsonl")
    assert len(lines) == 3
    if vertex is not None:  # Vertex AI's error lines, the record as read and google.rpc.Code INVALID_ARGUMENT
        assert sorted(line["instance"] for line in lines if isinstance(line["instance"], str)) == ["x", "x"]
        assert {line["error"]["code"] for line in lines} == {3}


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


@pytest.mark.emulators
def test_a_job_that_writes_new_tables_only_refuses_a_table_made_since_its_launch(cloud_emulators):
    """Vertex AI writes new tables only: the launch refuses a table that exists, and the loads are WRITE_EMPTY,
    so a table made (and filled) between the launch and the job's end is refused, not replaced."""
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("new_tables", exists_ok=True)
    schema = {"fields": [{"name": "key", "type": "INTEGER", "mode": "REQUIRED"}]}
    made_meanwhile = f"{cloud_emulators.project}.new_tables.made_meanwhile"
    client.create_table(bigquery.Table(made_meanwhile, schema=[bigquery.SchemaField("key", "INTEGER")]))
    client.insert_rows_json(made_meanwhile, [{"key": 99}])

    def write(new_only: bool) -> None:
        with beam.Pipeline(options=PipelineOptions(cloud_emulators.beam_options())) as pipeline:
            rows = pipeline | "Rows" >> beam.Create([{"key": 1}])
            _ = rows | WritePredictionsBigQuery(
                "new_tables.made_meanwhile", schema, cloud_emulators.project, new_only=new_only
            )

    with pytest.raises(Exception, match=r"(?i)empty|exists|duplicate"):
        write(new_only=True)
    keys = [row["key"] for row in client.query("SELECT key FROM new_tables.made_meanwhile").result()]
    assert keys == [99]  # left as it was
    write(new_only=False)  # --existing_tables=replace, or the template's own rows: replaced
    assert [row["key"] for row in client.query("SELECT key FROM new_tables.made_meanwhile").result()] == [1]


@pytest.mark.emulators
def test_vertex_ais_tables_are_loaded_with_its_columns_the_errors_struct_and_the_key_in_place_of_the_instance(
    cloud_emulators,
):
    """--output_shape=vertex: predictions `bill, prediction` (unkeyed) or `key, prediction` (keyed), and the
    errors table with the same columns, then `errors` STRUCT<code INT64, message STRING>."""
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("vertex_sinks", exists_ok=True)
    keyed = RowLayout((SCORE,), key_kind=KEY_INT, shape=VERTEX, inputs=(BILL,))
    with beam.Pipeline(options=PipelineOptions(cloud_emulators.beam_options())) as pipeline:
        rows = pipeline | "Rows" >> beam.Create([{"bill": 39.5, "prediction": "0.25"}])
        _ = rows | "Unkeyed" >> WritePredictionsBigQuery(
            "vertex_sinks.predictions", VERTEX_LAYOUT.schema(), cloud_emulators.project
        )
        keyed_rows = pipeline | "Keyed rows" >> beam.Create([{"key": 7, "prediction": "0.5"}])
        _ = keyed_rows | "Keyed" >> WritePredictionsBigQuery(
            "vertex_sinks.keyed", keyed.schema(), cloud_emulators.project
        )
        letters = pipeline | "Letters" >> beam.Create([letter(Reason.WRONG_TYPE, b'{"bill": "long"}')])
        _ = letters | "Errors" >> WriteDeadLettersBigQuery(
            "vertex_sinks.errors", cloud_emulators.project, vertex=VERTEX_LAYOUT
        )
        keyed_letters = pipeline | "Keyed letters" >> beam.Create([letter(Reason.INFERENCE_FAILED, b'{"key": 8}')])
        _ = keyed_letters | "Keyed errors" >> WriteDeadLettersBigQuery(
            "vertex_sinks.keyed_errors", cloud_emulators.project, vertex=keyed
        )

    def columns(name: str) -> list[tuple]:
        schema = client.get_table(f"{cloud_emulators.project}.vertex_sinks.{name}").schema
        return [
            (field.name, field.field_type, [(sub.name, sub.field_type) for sub in field.fields]) for field in schema
        ]

    def table(name: str) -> list[dict]:
        return [dict(row.items()) for row in client.query(f"SELECT * FROM vertex_sinks.{name}").result()]

    assert columns("predictions") == [("bill", "FLOAT", []), ("prediction", "STRING", [])]
    assert columns("keyed") == [("key", "INTEGER", []), ("prediction", "STRING", [])]
    errors_struct = ("errors", "RECORD", [("code", "INTEGER"), ("message", "STRING")])
    assert columns("errors") == [("bill", "FLOAT", []), errors_struct]
    assert columns("keyed_errors") == [("key", "INTEGER", []), errors_struct]
    assert table("predictions") == [{"bill": 39.5, "prediction": "0.25"}]
    (error,) = table("errors")
    assert error["bill"] is None and error["errors"]["code"] == 3
    assert error["errors"]["message"] == 'wrong_type: because wrong_type (in.txt); the record: {"bill": "long"}'
    assert table("keyed_errors") == [
        {"key": 8, "errors": {"code": 13, "message": "inference_failed: because inference_failed (in.txt)"}}
    ]


AFTER_UDF = """\
def finish(row):
    if row["key"] == 2:
        raise KeyError("label")
    if row["key"] == 3:
        return None
    if row["key"] == 4:
        return dict(row, note="no such column")
    return dict(row, score=round(row["score"], 1))
"""


@pytest.mark.parametrize("as_json_lines", [True, False], ids=["json-lines", "table-rows"])
def test_a_udf_after_the_model_changes_each_row_and_its_failures_are_the_records_dead_letters(as_json_lines):
    """Keys 1..5, key 5's included field unfit for its INTEGER column: the rows still map to their records."""
    layout = RowLayout((TensorSpec("score", "float32", ()),), included=(("count", "INTEGER"),))
    source = RecordBatch("in.jsonl", 1, [json.dumps({"key": key}).encode() for key in range(1, 6)])
    counts = [{"count": key} for key in range(1, 5)] + [{"count": "five"}]
    instances = InstanceBatch(np.arange(1, 6), {}, source, np.arange(5), counts)
    scored = ScoredBatch(instances, {"score": np.array([0.25, 1.25, 2.25, 3.25, 4.25], dtype=np.float32)})
    udf = UdfCode("after.py", AFTER_UDF, after="finish")
    with beam.Pipeline() as pipeline:
        rows, letters = pipeline | beam.Create([scored]) | FormatRows(layout, as_json_lines, udf)
        if as_json_lines:
            rows = rows | beam.FlatMap(lambda text: [json.loads(line) for line in text.split("\n")])
        assert_that(
            rows,
            equal_to(
                [{"key": 1, "score": 0.2, "count": 1}]
                + ([] if not as_json_lines else [{"key": 4, "score": 3.25, "count": 4, "note": "no such column"}])
            ),
        )
        described = letters | beam.Map(lambda letter: (letter.position, letter.reason, letter.message.split(":")[0]))
        expected = [
            ("in.jsonl:2", "udf_error", "after.py"),
            ("in.jsonl:3", "udf_error", "finish() returned NoneType None"),
            ("in.jsonl:5", "wrong_type", "included field value 'five' does not fit its INTEGER column"),
        ]
        if not as_json_lines:
            expected.append(("in.jsonl:4", "udf_error", "finish() returned a row that does not fit the output"))
        assert_that(described, equal_to(expected), label="letters")
