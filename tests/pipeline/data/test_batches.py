"""The units of work: where a record came from and its exact payload, and slicing batches without copies."""

from __future__ import annotations

import datetime
from decimal import Decimal

import numpy as np
import orjson
import pytest

from pipeline.data.batches import ColumnBatch, InstanceBatch, RecordBatch, RowBatch, ScoredBatch
from pipeline.data.dead_letters import Reason, Rejection

REJECTION = Rejection(Reason.WRONG_TYPE, "field 'x': 'a' is not finite float32 numbers")


def instance_batch(count: int = 5, included: bool = False) -> InstanceBatch:
    source = RecordBatch("in.jsonl", 1, [f"record {index}".encode() for index in range(count * 2)])
    return InstanceBatch(
        keys=np.arange(100, 100 + count, dtype=np.int64),
        features={
            "image": np.arange(count * 3, dtype=np.float32).reshape(count, 3),
            "name": np.array([f"n{index}" for index in range(count)], dtype=object),
        },
        source=source,
        positions=np.arange(0, count * 2, 2, dtype=np.int64),  # every other record made an instance
        included=[{"species": f"s{index}"} for index in range(count)] if included else None,
    )


# RecordBatch: lines, TFRecord indexes, whole files, table rows turned into lines.


def test_line_records_are_located_by_file_and_line_number_counted_from_start():
    batch = RecordBatch("gs://b/in.txt", 41, [b"a", b"b", b"c"])
    assert len(batch) == 3
    assert [batch.position_of(index) for index in range(3)] == [
        "gs://b/in.txt:41",
        "gs://b/in.txt:42",
        "gs://b/in.txt:43",
    ]
    assert batch.locate(2) == "gs://b/in.txt:43"
    assert batch.origin_of(1) == "gs://b/in.txt"
    assert batch.payload_of(1) == b"b"


def test_lines_of_a_file_read_in_ranges_are_located_by_the_byte_their_line_starts_at():
    batch = RecordBatch("gs://b/in.csv", 1_048_580, [b"1,2\r", b"", b"33,4"], b"a,b", by_byte=True)
    assert [batch.position_of(index) for index in range(3)] == [
        "gs://b/in.csv@1048580",
        "gs://b/in.csv@1048585",  # 4 bytes and the newline after the first
        "gs://b/in.csv@1048586",
    ]
    letter = batch.dead_letter(1, REJECTION)
    assert (letter.origin, letter.position, letter.payload) == ("gs://b/in.csv", "gs://b/in.csv@1048585", b"")


def test_tfrecord_records_are_located_by_zero_based_index():
    batch = RecordBatch("data.tfrecord", 0, [b"\x00", b"\x01"])
    assert batch.position_of(0) == "data.tfrecord:0"
    assert batch.locate(1) == "data.tfrecord:1"


def test_whole_files_are_each_their_own_origin_and_position():
    """A batch of whole files: each record's origin and position is its own path, not the batch's origin:start."""
    batch = RecordBatch(
        "gs://b/images/*.png", 0, [b"png0", b"png1"], origins=("gs://b/images/a.png", "gs://b/images/b.png")
    )
    assert batch.origin_of(1) == "gs://b/images/b.png"
    assert batch.position_of(0) == "gs://b/images/a.png"
    assert batch.locate(1) == "gs://b/images/b.png"
    assert batch.payload_of(1) == b"png1"


def test_locations_override_where_records_are_but_not_their_position_key():
    """Lines made from table rows: dead letters point at the row's key, while the position stays a key."""
    batch = RecordBatch("p:d.t", 0, [b"1:0.5", b"2:0.5"], locations=("key=1", None))
    assert batch.locate(0) == "key=1"
    assert batch.locate(1) is None
    assert batch.position_of(1) == "p:d.t:1"


def test_record_dead_letter_carries_origin_payload_reason_message_and_location():
    batch = RecordBatch("in.txt", 10, [b"ok", b"bad"])
    letter = batch.dead_letter(1, REJECTION, stacktrace="Traceback ...", timestamp="2024-01-01T00:00:00.000+00:00")
    assert letter.origin == "in.txt"
    assert letter.payload == b"bad"
    assert letter.reason == Reason.WRONG_TYPE
    assert letter.message == REJECTION.message
    assert letter.stacktrace == "Traceback ..."
    assert letter.timestamp == "2024-01-01T00:00:00.000+00:00"
    assert letter.position == "in.txt:11"


def test_dead_letter_without_timestamp_is_stamped_now_in_utc():
    before = datetime.datetime.now(datetime.UTC)
    letter = RecordBatch("in.txt", 1, [b"x"]).dead_letter(0, REJECTION)
    stamped = datetime.datetime.fromisoformat(letter.timestamp)
    assert stamped.utcoffset() == datetime.timedelta(0)
    assert before - datetime.timedelta(seconds=1) <= stamped <= datetime.datetime.now(datetime.UTC)
    assert letter.stacktrace == ""


def test_whole_file_dead_letter_names_the_file_itself():
    batch = RecordBatch("gs://b/*.jpg", 0, [b"a", b"b"], origins=("gs://b/1.jpg", "gs://b/2.jpg"))
    letter = batch.dead_letter(1, REJECTION)
    assert (letter.origin, letter.payload, letter.position) == ("gs://b/2.jpg", b"b", "gs://b/2.jpg")


# RowBatch: table rows.


def test_table_row_is_located_by_its_key_column_and_value():
    batch = RowBatch("p:d.t", [{"id": 7, "x": 1.0}, {"id": "abc", "x": 2.0}], key_column="id")
    assert len(batch) == 2
    assert batch.locate(0) == "id=7"
    assert batch.locate(1) == "id=abc"
    assert batch.origin_of(1) == "p:d.t"


@pytest.mark.parametrize(
    ("rows", "key_column"),
    [
        ([{"id": 7}], None),  # the job has no key column
        ([{"id": None}], "id"),  # the row's key is null
        ([{"x": 1.0}], "id"),  # the row lacks the key column
    ],
)
def test_table_row_without_a_usable_key_has_no_location(rows, key_column):
    """Table rows come in no set order, so an index would mislead: no key, no location."""
    assert RowBatch("p:d.t", rows, key_column=key_column).locate(0) is None


def test_table_row_position_is_its_index_in_the_batch():
    batch = RowBatch("p:d.t", [{"a": 1}, {"a": 2}, {"a": 3}])
    assert batch.position_of(2) == "p:d.t:2"


def test_table_row_payload_is_its_json_with_decimals_and_dates_as_text():
    row = {"id": 3, "price": Decimal("1.25"), "day": datetime.date(2024, 2, 29), 5: "int key"}
    payload = RowBatch("p:d.t", [row]).payload_of(0)
    assert orjson.loads(payload) == {"id": 3, "price": "1.25", "day": "2024-02-29", "5": "int key"}


def test_table_row_dead_letter_carries_the_row_as_json_and_its_key():
    batch = RowBatch("p:d.t", [{"id": 1, "x": "a"}, {"id": 2, "x": None}], key_column="id")
    letter = batch.dead_letter(1, Rejection(Reason.MISSING_FIELD, "field 'x' is null"), timestamp="t")
    assert letter.origin == "p:d.t"
    assert orjson.loads(letter.payload) == {"id": 2, "x": None}
    assert (letter.reason, letter.message, letter.position, letter.timestamp) == (
        Reason.MISSING_FIELD,
        "field 'x' is null",
        "id=2",
        "t",
    )


# InstanceBatch and ScoredBatch.


# RowBatch of a file's rows (Avro), and ColumnBatch (a Parquet row-group slice).


def test_a_file_row_is_located_by_its_key_or_else_by_its_row_in_the_file():
    batch = RowBatch("gs://lake/a.avro", [{"id": 7}, {"id": None}, {}], key_column="id", start=200)
    assert [batch.position_of(index) for index in range(3)] == [f"gs://lake/a.avro:{row}" for row in (200, 201, 202)]
    assert [batch.locate(index) for index in range(3)] == ["id=7", "gs://lake/a.avro:201", "gs://lake/a.avro:202"]
    assert RowBatch("gs://lake/a.avro", [{"id": 7}], start=5).locate(0) == "gs://lake/a.avro:5"


def test_a_column_batch_finds_its_rows_by_file_row_or_key_and_gives_them_as_json():
    import pyarrow as pa

    table = pa.table({"id": pa.array([3, None]), "blob": pa.array([b"hi", None]), "x": pa.array([1.5, 2.0])})
    batch = ColumnBatch("gs://lake/p.parquet", 1_000, table, key_column="id")
    assert len(batch) == 2 and batch.origin_of(1) == "gs://lake/p.parquet"
    assert [batch.position_of(index) for index in range(2)] == ["gs://lake/p.parquet:1000", "gs://lake/p.parquet:1001"]
    assert [batch.locate(index) for index in range(2)] == ["id=3", "gs://lake/p.parquet:1001"]
    assert ColumnBatch("f.parquet", 0, table).locate(0) == "f.parquet:0"
    assert batch.rows() == [{"id": 3, "blob": b"hi", "x": 1.5}, {"id": None, "blob": None, "x": 2.0}]
    assert orjson.loads(batch.payload_of(0)) == {"id": 3, "blob": "aGk=", "x": 1.5}
    letter = batch.dead_letter(1, REJECTION)
    assert (letter.origin, letter.position, letter.reason) == (
        "gs://lake/p.parquet",
        "gs://lake/p.parquet:1001",
        "wrong_type",
    )


def test_instance_dead_letter_is_the_source_record_at_its_position():
    """Instance 2 came from source record 4 (line 5): the dead letter must carry that record, not record 2."""
    batch = instance_batch()
    letter = batch.dead_letter(2, REJECTION, timestamp="t")
    assert letter.payload == b"record 4"
    assert letter.position == "in.jsonl:5"


def test_slice_takes_the_range_of_every_array_as_views():
    batch = instance_batch(count=5, included=True)
    part = batch.slice(1, 4)
    assert len(part) == 3
    assert part.keys.tolist() == [101, 102, 103]
    assert part.positions.tolist() == [2, 4, 6]
    assert part.features["image"].tolist() == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    assert part.features["name"].tolist() == ["n1", "n2", "n3"]
    assert part.included == [{"species": "s1"}, {"species": "s2"}, {"species": "s3"}]
    assert part.source is batch.source
    for sliced, whole in [
        (part.keys, batch.keys),
        (part.positions, batch.positions),
        (part.features["image"], batch.features["image"]),
        (part.features["name"], batch.features["name"]),
    ]:
        assert np.shares_memory(sliced, whole), "a slice must be a view, not a copy"


def test_slice_without_included_fields_keeps_none():
    assert instance_batch(included=False).slice(0, 2).included is None


def test_slice_dead_letters_still_find_their_records():
    part = instance_batch().slice(3, 5)
    assert part.dead_letter(0, REJECTION).payload == b"record 6"


def test_select_keeps_instances_where_the_mask_is_true_in_order():
    batch = instance_batch(count=5, included=True)
    mask = np.array([True, False, True, False, True])
    chosen = batch.select(mask)
    assert len(chosen) == 3
    assert chosen.keys.tolist() == [100, 102, 104]
    assert chosen.positions.tolist() == [0, 4, 8]
    assert chosen.features["image"].tolist() == [[0, 1, 2], [6, 7, 8], [12, 13, 14]]
    assert chosen.features["name"].tolist() == ["n0", "n2", "n4"]
    assert chosen.included == [{"species": "s0"}, {"species": "s2"}, {"species": "s4"}]
    assert chosen.dead_letter(1, REJECTION).payload == b"record 4"


def test_select_of_nothing_is_an_empty_batch():
    chosen = instance_batch(count=3, included=True).select(np.zeros(3, dtype=bool))
    assert len(chosen) == 0
    assert chosen.included == []
    assert chosen.features["image"].shape == (0, 3)


def test_select_refuses_a_mask_of_another_length_when_fields_are_included():
    with pytest.raises(ValueError):
        instance_batch(count=3, included=True).select(np.array([True, False]))


def test_scored_batch_select_keeps_outputs_aligned_with_their_instances():
    instances = instance_batch(count=4)
    scored = ScoredBatch(instances, {"scores": np.array([[0.1], [0.2], [0.3], [0.4]]), "label": np.array([1, 2, 3, 4])})
    assert len(scored) == 4
    chosen = scored.select(np.array([False, True, False, True]))
    assert len(chosen) == 2
    assert chosen.instances.keys.tolist() == [101, 103]
    assert chosen.outputs["scores"].tolist() == [[0.2], [0.4]]
    assert chosen.outputs["label"].tolist() == [2, 4]


def test_scored_batch_defaults_to_no_outputs():
    assert ScoredBatch(instance_batch(count=2)).outputs == {}


def test_a_table_rows_bytes_column_is_base64_in_its_dead_letter_payload():
    """BYTES values as BigQuery's JSON export writes them, not Python's repr b'...'."""
    payload = RowBatch("p:d.t", [{"key": 1, "blob": b"hi"}]).payload_of(0)
    assert orjson.loads(payload) == {"key": 1, "blob": "aGk="}
