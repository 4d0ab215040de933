"""The columns of Vertex AI's tables, typed by the source (a table's types, Vertex AI's reading of CSV and
JSON) or by the model's inputs, and values written as their column holds them."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from pipeline.data.vertex_columns import NO_FIT, fit, fitted, source_column, tensor_column, value_column
from pipeline.model.signatures import TensorSpec


@pytest.mark.parametrize(
    ("value", "column", "held"),
    [
        (None, {"type": "STRING"}, None),
        ("a", {"type": "STRING"}, "a"),
        ([1, 2], {"type": "STRING"}, "[1,2]"),
        ({"b64": "/w=="}, {"type": "BYTES"}, "/w=="),
        (b"\xff", {"type": "BYTES"}, "/w=="),
        ([1.0, 2.0], {"type": "FLOAT", "mode": "REPEATED"}, [1.0, 2.0]),
        (3.0, {"type": "INTEGER"}, 3),
        (16777217, {"type": "FLOAT"}, 16777217.0),
        (Decimal("2.50"), {"type": "NUMERIC"}, "2.50"),
        (Decimal("2.5"), {"type": "FLOAT"}, 2.5),
        (datetime.date(2024, 5, 1), {"type": "DATE"}, "2024-05-01"),
        ({"a": b"\xff"}, {"type": "STRING"}, '{"a":{"b64":"/w=="}}'),
    ],
)
def test_a_value_is_written_as_its_column_holds_it(value, column, held):
    assert fit(value, column) == held


@pytest.mark.parametrize(
    ("value", "column"),
    [
        ("x", {"type": "FLOAT"}),
        (1.5, {"type": "INTEGER"}),
        (True, {"type": "INTEGER"}),
        ("nan-ish", {"type": "NUMERIC"}),
        (1, {"type": "FLOAT", "mode": "REPEATED"}),
        ([1, None], {"type": "FLOAT", "mode": "REPEATED"}),
    ],
)
def test_a_value_its_column_cannot_hold_does_not_fit(value, column):
    assert fit(value, column) is NO_FIT


def test_a_row_of_columns_is_null_where_a_value_does_not_fit_and_says_so():
    columns = [{"name": "a", "type": "FLOAT"}, {"name": "b", "type": "STRING"}]
    assert fitted({"a": 1, "b": "x"}, columns) == ({"a": 1.0, "b": "x"}, True)
    assert fitted({"a": "long"}, columns) == ({"a": None, "b": None}, False)


@pytest.mark.parametrize(
    ("source_type", "kind", "mode"),
    [
        ("INTEGER", "INTEGER", "NULLABLE"),
        ("INT64", "INTEGER", "NULLABLE"),
        ("FLOAT64", "FLOAT", "NULLABLE"),
        ("NUMERIC", "NUMERIC", "NULLABLE"),
        ("TIMESTAMP", "TIMESTAMP", "NULLABLE"),
        ("BYTES", "BYTES", "NULLABLE"),
        ("ARRAY<INTEGER>", "INTEGER", "REPEATED"),
        ("ARRAY<ARRAY<FLOAT>>", "STRING", "NULLABLE"),  # BigQuery arrays do not nest: JSON text
        ("RECORD", "STRING", "NULLABLE"),
        ("UNION", "STRING", "NULLABLE"),
    ],
)
def test_a_source_columns_type_is_kept(source_type, kind, mode):
    assert source_column("c", source_type) == {"name": "c", "type": kind, "mode": mode}


@pytest.mark.parametrize(
    ("value", "kind", "mode"),
    [
        (12, "FLOAT", "NULLABLE"),  # JSON numbers and unquoted CSV values are doubles to Vertex AI
        (None, "FLOAT", "NULLABLE"),
        (True, "BOOLEAN", "NULLABLE"),
        ("x", "STRING", "NULLABLE"),
        ([1, 2.5], "FLOAT", "REPEATED"),
        (["a"], "STRING", "NULLABLE"),
        ({"a": 1}, "STRING", "NULLABLE"),
    ],
)
def test_a_fields_column_follows_its_value_as_vertex_ai_reads_it(value, kind, mode):
    assert value_column("f", value) == {"name": "f", "type": kind, "mode": mode}


def test_an_inputs_column_follows_its_dtype_and_shape():
    assert tensor_column("v", TensorSpec("v", "float32", (4,))) == {"name": "v", "type": "FLOAT", "mode": "REPEATED"}
    assert tensor_column("a", TensorSpec("v", "float32", (4,)), element=True)["mode"] == "NULLABLE"
    assert tensor_column("g", TensorSpec("g", "int64", (2, 2)))["type"] == "STRING"
    assert tensor_column("r", TensorSpec("r_bytes", "string", ()))["type"] == "BYTES"
