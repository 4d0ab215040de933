"""The 2017 sample's lines: every rejection kind, batch == one by one, and the dead-letter contract."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.seed_lines import parse_line, parse_lines, row_to_line

WIDTH = 4


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
    parsed_key, image = parse_line(payload, WIDTH)
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
def test_each_kind_of_bad_record_is_rejected_with_its_reason(payload, reason):
    outcome = parse_line(payload, WIDTH)
    assert isinstance(outcome, Rejection)
    assert outcome.reason == reason
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
    result = parse_lines(payloads, WIDTH)

    expected = [parse_line(payload, WIDTH) for payload in payloads]
    expected_good = [outcome for outcome in expected if not isinstance(outcome, Rejection)]
    assert result.keys.tolist() == [key for key, _ in expected_good]
    np.testing.assert_array_equal(result.images, np.stack([image for _, image in expected_good]))
    assert [payloads[position] for position in result.positions] == [
        b"1:1,2,3,4",
        b"3:0.25,0.5,1e-7,-2",
        b"5: 1,2,3,4",
        b"9:1,2,3,4",
    ]
    assert result.rejections == [
        (position, outcome) for position, outcome in enumerate(expected) if isinstance(outcome, Rejection)
    ]


def test_batch_parse_of_only_bad_records_has_no_instances():
    result = parse_lines([b"", b"nope"], WIDTH)
    assert len(result.keys) == 0 and result.images.shape == (0, WIDTH)
    assert [rejection.reason for _, rejection in result.rejections] == [Reason.EMPTY, Reason.MISSING_KEY]


def test_batch_parse_matches_sample_lines_parsed_by_numpy(sample_lines):
    lines = sample_lines[:300]
    result = parse_lines(lines, 784)
    assert not result.rejections
    expected = np.array([line.split(b":", 1)[1].split(b",") for line in lines], dtype=np.float64).astype(np.float32)
    np.testing.assert_array_equal(result.images, expected)
    assert result.keys.tolist() == list(range(300))


def test_bigquery_rows_become_text_lines_or_null_rejections():
    assert row_to_line({"key": 3, "image": "1,2,3,4"}) == b"3:1,2,3,4"
    assert row_to_line({"id": 3, "image": "1,2"}, key_column="id") == b"3:1,2"
    null_image = row_to_line({"key": 3, "image": None})
    assert isinstance(null_image, Rejection) and null_image.reason == Reason.NULL_FIELD
    assert "image is NULL" in null_image.message
    null_key = row_to_line({"key": None, "image": "1,2"})
    assert isinstance(null_key, Rejection) and "key is NULL" in null_key.message
