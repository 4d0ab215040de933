"""The columns of Parquet and Avro files typed as a BigQuery table's are (INTEGER, FLOAT, STRING, ARRAY<...>,
RECORD...), so that a launch checks them as it checks a table's columns (`launch.table_checks.TableInfo`).

An Avro schema may define a named type (a record, an enum, a fixed) once and use it again by its name,
namespaced or not; names are looked up in the schema's own definitions (`fastavro.parse_schema`, which
qualifies every name with its namespace), never taken for records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastavro
import pyarrow as pa


def arrow_type_name(arrow_type: pa.DataType) -> str:
    """INTEGER, FLOAT, BOOLEAN, STRING, BYTES, NUMERIC, DATE, TIME, TIMESTAMP, ARRAY<...> or RECORD."""
    types = pa.types
    if types.is_dictionary(arrow_type):
        return arrow_type_name(arrow_type.value_type)
    if types.is_list(arrow_type) or types.is_large_list(arrow_type) or types.is_fixed_size_list(arrow_type):
        return f"ARRAY<{arrow_type_name(arrow_type.value_type)}>"
    checks: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
        (types.is_boolean, "BOOLEAN"),
        (types.is_integer, "INTEGER"),
        (types.is_floating, "FLOAT"),
        (types.is_decimal, "NUMERIC"),
        (lambda kind: types.is_string(kind) or types.is_large_string(kind), "STRING"),
        (types.is_binary, "BYTES"),
        (types.is_large_binary, "BYTES"),
        (types.is_fixed_size_binary, "BYTES"),
        (types.is_date, "DATE"),
        (types.is_timestamp, "TIMESTAMP"),
        (types.is_time, "TIME"),
        (lambda kind: types.is_struct(kind) or types.is_map(kind), "RECORD"),
    )
    return next((name for check, name in checks if check(arrow_type)), str(arrow_type).upper())


_AVRO_PRIMITIVES = {"boolean": "BOOLEAN", "int": "INTEGER", "long": "INTEGER", "float": "FLOAT", "double": "FLOAT"}
_AVRO_PRIMITIVES |= {"bytes": "BYTES", "string": "STRING", "fixed": "BYTES", "enum": "STRING", "null": "NULL"}
_AVRO_LOGICAL = {"decimal": "NUMERIC", "date": "DATE", "uuid": "STRING"}


def avro_type_name(schema: Any, named: Mapping[str, Any] | None = None) -> str:
    """The type name of an Avro field's schema (a nullable union as its one other type); `named`: the
    schema's named types by full name, which a field may give as its type."""
    named = named or {}
    if isinstance(schema, list):
        kinds = [kind for kind in schema if kind != "null"]
        return avro_type_name(kinds[0], named) if len(kinds) == 1 else "UNION"
    if isinstance(schema, str):
        if schema in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[schema]
        definition = named.get(schema)
        # A record is RECORD without a look inside, which keeps a recursive type from recursing here.
        if isinstance(definition, dict) and definition.get("type") != "record":
            return avro_type_name(definition, named)
        return "RECORD"
    logical = str(schema.get("logicalType", ""))
    if logical in _AVRO_LOGICAL:
        return _AVRO_LOGICAL[logical]
    if logical.startswith(("time-", "timestamp-", "local-timestamp-")):
        return "TIME" if logical.startswith("time-") else "TIMESTAMP"
    kind = schema.get("type")
    if kind == "array":
        return f"ARRAY<{avro_type_name(schema['items'], named)}>"
    if kind in ("record", "map"):
        return "RECORD"
    return avro_type_name(kind, named)


def avro_columns(writer_schema: Any, value_field: str) -> dict[str, str]:
    """The fields of an Avro file's schema and their type names; a file of plain values (no records) has
    one, `value_field`."""
    named: dict[str, Any] = {}
    parsed = fastavro.parse_schema(writer_schema, named_schemas=named)
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return {value_field: avro_type_name(parsed, named)}
    return {field["name"]: avro_type_name(field["type"], named) for field in parsed.get("fields", ())}
