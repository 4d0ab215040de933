"""Parsing and formatting of records: every rejection kind, and batch == one-by-one."""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

from pipeline.records import (
    DeadLetter,
    RawRecord,
    Reason,
    ScoredBatch,
    parse_batch,
    parse_record,
    prediction_json_lines,
    prediction_rows,
    row_to_record,
    split_non_finite_scores,
)

WIDTH = 4


def record(payload: bytes, origin: str = "test.txt") -> RawRecord:
    return RawRecord(origin, payload)


@pytest.mark.parametrize(
    ("payload", "key", "values"),
    [
        (b"7:0.0,0.5,1,2", 7, [0.0, 0.5, 1.0, 2.0]),
        (b"-3:1e-3,2.5E2,+4,-0", -3, [1e-3, 250.0, 4.0, -0.0]),
        (b"  12 : 1,2,3,4  \r\n", 12, [1, 2, 3, 4]),
        (b"5:1,2,3,4\r", 5, [1, 2, 3, 4]),
        (b"5: 1, 2 ,3,4", 5, [1, 2, 3, 4]),
        (b"9223372036854775807:.5,5.,0,0", 2**63 - 1, [0.5, 5.0, 0, 0]),
        (b"-9223372036854775808:0,0,0,0", -(2**63), [0, 0, 0, 0]),
        (b"+8:0,0,0,0", 8, [0, 0, 0, 0]),
    ],
)
def test_valid_records_parse_to_key_and_float32_vector(payload, key, values):
    parsed_key, image = parse_record(record(payload), WIDTH)
    assert parsed_key == key
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, np.array(values, dtype=np.float32))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"   \t \r", Reason.EMPTY),
        (b"1,2,3,4", Reason.MISSING_KEY),
        (b":1,2,3,4", Reason.BAD_KEY),
        (b"abc:1,2,3,4", Reason.BAD_KEY),
        (b"1.5:1,2,3,4", Reason.BAD_KEY),
        (b"1_000:1,2,3,4", Reason.BAD_KEY),
        (b"99999999999999999999:1,2,3,4", Reason.KEY_OUT_OF_RANGE),
        (b"1:1,2,3", Reason.WRONG_VALUE_COUNT),
        (b"1:1,2,3,4,5", Reason.WRONG_VALUE_COUNT),
        (b"1:", Reason.WRONG_VALUE_COUNT),
        (b"1:1,2,,4", Reason.NON_NUMERIC),
        (b"1:1,2,x,4", Reason.NON_NUMERIC),
        (b"1:1,2,0x10,4", Reason.NON_NUMERIC),
        (b"1:1,2,1_0,4", Reason.NON_NUMERIC),
        (b"1:1,2,3:4,4", Reason.NON_NUMERIC),
        (b"1:nan,2,3,4", Reason.NON_FINITE),
        (b"1:1,inf,3,4", Reason.NON_FINITE),
        (b"1:1,2,-Infinity,4", Reason.NON_FINITE),
        (b"1:1,2,1e39,4", Reason.NON_FINITE),  # finite in float64, not in float32
        (b"1:1,2,\xff\xfe,4", Reason.NOT_UTF8),
        (b"\xc3\x28:1,2,3,4", Reason.NOT_UTF8),
    ],
)
def test_each_kind_of_bad_record_is_a_dead_letter_with_its_reason(payload, reason):
    outcome = parse_record(record(payload, "gs://bucket/in.txt.gz"), WIDTH)
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == reason
    assert outcome.payload == payload
    assert outcome.origin == "gs://bucket/in.txt.gz"
    assert outcome.message and "\n" not in outcome.message


def test_batch_parse_gives_exactly_what_one_by_one_parsing_gives():
    payloads = [
        b"1:1,2,3,4",
        b"2:1,2,3",
        b"3:0.25,0.5,1e-7,-2",
        b"",
        b"4:1,2,1.2.3,4",
        b"5: 1,2,3,4",
        b"6:nan,1,2,3",
        b"7:1e39,1,2,3",
        b"x:1,2,3,4",
        b"8:\xff,1,2,3",
        b"9:1,2,3,4",
    ]
    records = [record(payload) for payload in payloads]
    result = parse_batch(records, WIDTH)

    expected = [parse_record(item, WIDTH) for item in records]
    expected_good = [outcome for outcome in expected if not isinstance(outcome, DeadLetter)]
    expected_dead = [outcome for outcome in expected if isinstance(outcome, DeadLetter)]
    assert result.batch.keys.tolist() == [key for key, _ in expected_good]
    np.testing.assert_array_equal(result.batch.images, np.stack([image for _, image in expected_good]))
    assert [record.payload for record in result.batch.records] == [
        b"1:1,2,3,4",
        b"3:0.25,0.5,1e-7,-2",
        b"5: 1,2,3,4",
        b"9:1,2,3,4",
    ]
    assert [(dead.payload, dead.reason) for dead in result.dead_letters] == [
        (dead.payload, dead.reason) for dead in expected_dead
    ]


def test_batch_parse_of_only_bad_records_has_no_batch():
    result = parse_batch([record(b""), record(b"nope")], WIDTH)
    assert result.batch is None
    assert [dead.reason for dead in result.dead_letters] == [Reason.EMPTY, Reason.MISSING_KEY]


def test_batch_parse_matches_sample_lines_parsed_by_numpy(sample_lines):
    lines = sample_lines[:300]
    result = parse_batch([record(line) for line in lines], 784)
    assert not result.dead_letters
    expected = np.array([line.split(b":", 1)[1].split(b",") for line in lines], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(result.batch.images, expected)
    assert result.batch.keys.tolist() == list(range(300))


def test_dead_letter_row_keeps_text_and_base64_of_the_payload():
    text_row = parse_record(record(b"bad line"), WIDTH).to_row()
    assert text_row["payloadString"] == "bad line"
    assert base64.b64decode(text_row["payloadBytes"]) == b"bad line"
    assert text_row["reason"] == Reason.MISSING_KEY
    assert text_row["origin"] == "test.txt"
    assert text_row["timestamp"].endswith("+00:00")

    binary = parse_record(record(b"\xff\xfe:1"), WIDTH)
    binary_row = orjson.loads(binary.to_json_line())
    assert binary_row["payloadString"] is None
    assert base64.b64decode(binary_row["payloadBytes"]) == b"\xff\xfe:1"


def test_prediction_rows_have_key_argmax_max_and_every_class():
    scored = ScoredBatch(
        np.array([7, -2], dtype=np.int64), np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], dtype=np.float32)
    )
    rows = prediction_rows(scored)
    assert rows[0] == {"key": 7, "prediction": 1, "confidence": 0.7, "pred0": 0.1, "pred1": 0.7, "pred2": 0.2}
    assert rows[1]["key"] == -2 and rows[1]["prediction"] == 0 and rows[1]["confidence"] == 0.5
    assert [orjson.loads(line) for line in prediction_json_lines(scored)] == rows
    assert isinstance(rows[0]["key"], int)


def test_rows_with_non_finite_scores_are_split_off_as_dead_letters():
    records = tuple(RawRecord("in.txt", f"{key}:...".encode()) for key in range(3))
    scores = np.array([[0.2, 0.8], [np.nan, 0.5], [0.4, np.inf]], dtype=np.float32)
    kept, dead = split_non_finite_scores(ScoredBatch(np.arange(3, dtype=np.int64), scores, records))
    assert kept.keys.tolist() == [0] and kept.records == records[:1]
    np.testing.assert_array_equal(kept.scores, scores[:1])
    assert [(letter.payload, letter.reason) for letter in dead] == [
        (b"1:...", Reason.NON_FINITE_SCORE),
        (b"2:...", Reason.NON_FINITE_SCORE),
    ]

    all_finite = ScoredBatch(np.arange(1, dtype=np.int64), scores[:1], records[:1])
    same, none = split_non_finite_scores(all_finite)
    assert same is all_finite and none == []
    none_finite, dead = split_non_finite_scores(ScoredBatch(np.arange(2, dtype=np.int64), scores[1:], records[1:]))
    assert none_finite is None and len(dead) == 2


def test_bigquery_rows_become_text_records_or_null_dead_letters():
    assert row_to_record({"key": 3, "image": "1,2,3,4"}, "ds.images") == RawRecord("ds.images", b"3:1,2,3,4")
    null_image = row_to_record({"key": 3, "image": None}, "ds.images")
    assert isinstance(null_image, DeadLetter) and null_image.reason == Reason.NULL_FIELD
    assert "image is NULL" in null_image.message
    null_key = row_to_record({"key": None, "image": "1,2"}, "ds.images")
    assert isinstance(null_key, DeadLetter) and "key is NULL" in null_key.message
