"""Parquet and Avro columns typed as a table's: every Arrow type, Avro's unions, logical types, and named
types used again by their (namespaced) names."""

from __future__ import annotations

import pyarrow as pa

from pipeline.reading.column_types import arrow_type_name, avro_columns, avro_type_name


def test_schemas_are_typed_as_a_tables_columns():
    fields = {
        "i": pa.int32(),
        "u": pa.uint64(),
        "f": pa.float32(),
        "b": pa.bool_(),
        "s": pa.large_string(),
        "d": pa.dictionary(pa.int8(), pa.string()),
        "by": pa.binary(),
        "n": pa.decimal128(10, 2),
        "day": pa.date32(),
        "t": pa.timestamp("us"),
        "image": pa.list_(pa.float32(), 784),
        "nested": pa.list_(pa.list_(pa.int64())),
        "r": pa.struct([("a", pa.int8())]),
    }
    assert {name: arrow_type_name(kind) for name, kind in fields.items()} == {
        "i": "INTEGER",
        "u": "INTEGER",
        "f": "FLOAT",
        "b": "BOOLEAN",
        "s": "STRING",
        "d": "STRING",
        "by": "BYTES",
        "n": "NUMERIC",
        "day": "DATE",
        "t": "TIMESTAMP",
        "image": "ARRAY<FLOAT>",
        "nested": "ARRAY<ARRAY<INTEGER>>",
        "r": "RECORD",
    }
    assert avro_type_name(["null", "long"]) == "INTEGER"
    assert avro_type_name(["null", "long", "string"]) == "UNION"
    assert avro_type_name({"type": "array", "items": "float"}) == "ARRAY<FLOAT>"
    assert avro_type_name({"type": "bytes", "logicalType": "decimal", "precision": 4}) == "NUMERIC"
    assert avro_type_name({"type": "long", "logicalType": "timestamp-millis"}) == "TIMESTAMP"
    assert avro_type_name({"type": "enum", "name": "E", "symbols": ["A"]}) == "STRING"


def test_an_avro_named_type_used_again_by_name_is_typed_as_its_definition():
    schema = {
        "type": "record",
        "name": "Row",
        "namespace": "lake.penguins",
        "fields": [
            {"name": "key", "type": "long"},
            {"name": "island", "type": {"type": "enum", "name": "Island", "symbols": ["Biscoe", "Dream"]}},
            {"name": "home", "type": "Island"},
            {"name": "former", "type": ["null", "lake.penguins.Island"]},
            {"name": "tag", "type": {"type": "fixed", "name": "Tag", "size": 4}},
            {"name": "tags", "type": {"type": "array", "items": "Tag"}},
            {
                "name": "price",
                "type": {"type": "fixed", "name": "Price", "size": 8, "logicalType": "decimal", "precision": 9},
            },
            {"name": "cost", "type": ["null", "Price"]},
            {"name": "next", "type": ["null", "Row"]},  # a recursive record stays a record
        ],
    }
    assert avro_columns(schema, "value") == {
        "key": "INTEGER",
        "island": "STRING",
        "home": "STRING",
        "former": "STRING",
        "tag": "BYTES",
        "tags": "ARRAY<BYTES>",
        "price": "NUMERIC",
        "cost": "NUMERIC",
        "next": "RECORD",
    }
    assert avro_columns(["null", "double"], "value") == {"value": "FLOAT"}
