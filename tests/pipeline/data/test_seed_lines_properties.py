"""Property tests of the parser: for any bytes, exactly one outcome, and batch == one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.dead_letters import DeadLetter, Rejection
from pipeline.data.seed_lines import parse_line, parse_lines

WIDTH = 3

number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.floats(width=32).map(lambda value: f"{value:.9g}"),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e", "e5", ".", "-", "+.5", "5.", "1e-400", "1e39", "0x1p3", "1_0", " 2 "]),
)
value_list = st.lists(number_text, min_size=0, max_size=WIDTH + 2).map(",".join)
key_text = st.one_of(
    st.integers(-(2**64), 2**64).map(str),
    st.sampled_from(["", "x", "1.0", "+3", " 4 ", "٣", "1_0"]),
)
structured_line = st.builds(
    lambda key, values, end: f"{key}:{values}{end}".encode(),
    key_text,
    value_list,
    st.sampled_from(["", "\r", " ", "\t"]),
)
any_line = st.one_of(structured_line, st.binary(max_size=64), st.text(max_size=64).map(str.encode))


def check_outcome(outcome) -> None:
    if isinstance(outcome, Rejection):
        assert outcome.reason and outcome.message and "\n" not in outcome.message
        assert DeadLetter("origin", b"x", outcome.reason, outcome.message).to_json_line()  # always serialisable
    else:
        key, image = outcome
        assert isinstance(key, int) and -(2**63) <= key < 2**63
        assert image.dtype == np.float32 and image.shape == (WIDTH,) and np.isfinite(image).all()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_line)
def test_any_bytes_give_a_record_or_a_rejection_never_an_exception(payload):
    check_outcome(parse_line(payload, WIDTH))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_line, max_size=12))
def test_batch_parsing_equals_parsing_one_by_one(payloads):
    result = parse_lines(payloads, WIDTH)
    expected = [parse_line(payload, WIDTH) for payload in payloads]

    good = [(position, outcome) for position, outcome in enumerate(expected) if not isinstance(outcome, Rejection)]
    rejected = [(position, outcome) for position, outcome in enumerate(expected) if isinstance(outcome, Rejection)]
    assert len(result.keys) + len(result.rejections) == len(payloads)  # never both, never neither
    assert result.positions.tolist() == [position for position, _ in good]
    assert result.keys.tolist() == [outcome[0] for _, outcome in good]
    if good:
        np.testing.assert_array_equal(result.images, np.stack([outcome[1] for _, outcome in good]))
    assert result.rejections == rejected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=WIDTH, max_size=WIDTH),
    st.integers(-(2**63), 2**63 - 1),
)
def test_well_formed_lines_round_trip_exactly(values, key):
    line = f"{key}:" + ",".join(repr(value) for value in values)
    parsed_key, image = parse_line(line.encode(), WIDTH)
    assert parsed_key == key
    np.testing.assert_array_equal(image, np.array(values, dtype=np.float32))


def test_huge_and_hostile_lines():
    several_mb = b"1:" + b"0.123456789," * 400_000 + b"1"
    assert parse_line(several_mb, WIDTH).reason == "wrong_value_count"
    wide = parse_lines([several_mb], 400_001)
    assert wide.images.shape == (1, 400_001)
    junk = bytes(range(256)) * 4000
    assert isinstance(parse_line(junk, WIDTH), Rejection)
    assert len(parse_lines([junk] * 3, WIDTH).rejections) == 3
