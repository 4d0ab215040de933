"""pipeline.data.values: numbers as JSON in their shortest round-tripping decimal, dtypes as BigQuery types."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.values import bigquery_type, json_values


def test_float32_values_are_written_in_their_shortest_decimal_and_read_back_exactly():
    array = np.array([[0.1, 1 / 3], [1e-7, 3.4e38]], dtype=np.float32)
    values = json_values(array)
    assert values[0][0] == 0.1 and values[1][0] == 1e-7  # not 0.10000000149011612
    assert np.array_equal(np.array(values, dtype=np.float32), array)


def test_a_sliced_array_is_written_as_its_values():
    array = np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2]  # not contiguous
    assert json_values(array) == [[0, 2], [4, 6], [8, 10]]
    assert json_values(np.array([True, False])) == [True, False]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float32", "FLOAT"),
        ("float16", "FLOAT"),
        ("int64", "INTEGER"),
        ("uint8", "INTEGER"),
        ("bool", "BOOLEAN"),
        ("string", "STRING"),
    ],
)
def test_each_dtype_has_its_bigquery_type(dtype, expected):
    assert bigquery_type(dtype) == expected
