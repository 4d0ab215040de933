from __future__ import annotations

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.numbers import fraction, seconds, share


@pytest.mark.parametrize("value, expected", [("0.5", 0.5), (" 1 ", 1.0), (0.01, 0.01)])
def test_a_share_above_0_and_at_most_1_is_taken(value, expected):
    assert share(value, "--max_failure_share") == expected


@pytest.mark.parametrize("value", ["0", "-0.1", "1.5", "half", ""])
def test_any_other_share_is_one_line_naming_the_flag(value):
    with pytest.raises(LaunchError) as raised:
        share(value, "--max_failure_share")
    assert (
        str(raised.value)
        == f"--max_failure_share={value}: must be a share above 0 and at most 1 (1 never stops the job)"
    )


def test_seconds_are_taken_within_their_bounds_and_whole_where_asked():
    assert seconds("0", "--wait", 0.0, 60.0) == 0.0
    assert seconds("2.5", "--wait", 0.0, 60.0) == 2.5
    assert seconds("60", "--window", 1, 86_400, whole=True) == 60.0


@pytest.mark.parametrize(
    "value, whole, message",
    [
        ("61", False, "--flag=61: must be a number of seconds from 0 to 60"),
        ("soon", False, "--flag=soon: must be a number of seconds from 0 to 60"),
        ("1.5", True, "--flag=1.5: must be a whole number of seconds from 0 to 60"),
    ],
)
def test_seconds_out_of_bounds_or_not_whole_are_one_line(value, whole, message):
    with pytest.raises(LaunchError) as raised:
        seconds(value, "--flag", 0, 60, whole=whole)
    assert str(raised.value) == message


def test_a_fraction_says_what_it_must_be_in_the_callers_words():
    assert fraction("0.3", "--drift_threshold", "must be a distance above 0 and at most 1") == 0.3
    with pytest.raises(LaunchError) as raised:
        fraction("2", "--drift_threshold", "must be a distance above 0 and at most 1")
    assert str(raised.value) == "--drift_threshold=2: must be a distance above 0 and at most 1"
