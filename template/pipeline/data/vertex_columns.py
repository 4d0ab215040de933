"""The columns of Vertex AI's BigQuery tables (`output_shape=vertex`) and the values they hold.

An instance's columns are typed by the source where it has types (a table's or a Parquet file's columns), by
Vertex AI's reading of a CSV row (unquoted values are numbers, quoted ones text) or a JSON record (numbers are
doubles, as in the Struct Vertex AI writes), and by the model's inputs where no record is seen at launch. A
value is written as its column holds it (`fit`); one that does not fit is NULL, never a refused load.
"""

from __future__ import annotations

import base64
import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from pipeline.data.values import bigquery_type
from pipeline.model.signatures import TensorSpec

Column = dict[str, Any]  # a BigQuery schema field: name, type, mode
NO_FIT = object()  # what `fit` returns for a value its column cannot hold
_TIME_TYPES = ("DATE", "DATETIME", "TIME", "TIMESTAMP")
_NUMERIC_TYPES = ("NUMERIC", "BIGNUMERIC")
# A source column's type as an output column of the same values (legacy names as today's).
_SOURCE_TYPES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}
_SOURCE_TYPES |= {name: name for name in ("INTEGER", "FLOAT", "BOOLEAN", "STRING", "BYTES", *_NUMERIC_TYPES)}
_SOURCE_TYPES |= {name: name for name in _TIME_TYPES}


def is_bytes_tensor(name: str) -> bool:
    """TensorFlow Serving's JSON: a tensor whose name ends in `_bytes` holds binary values, always base64."""
    return name.endswith("_bytes")


def column(name: str, kind: str, mode: str = "NULLABLE") -> Column:
    return {"name": name, "type": kind, "mode": mode}


def tensor_column(name: str, spec: TensorSpec, element: bool = False) -> Column:
    """The column of an input (or, `element`, of one value of an array input): JSON text for a matrix or an
    array of text (BigQuery arrays do not nest, and bytes that are not UTF-8 are {"b64": ...})."""
    shape = spec.shape[1:] if element else spec.shape
    if len(shape) >= 2 or (spec.dtype == "string" and bool(shape)):
        return column(name, "STRING")
    if spec.dtype == "string" and is_bytes_tensor(spec.name):
        return column(name, "BYTES")
    return column(name, bigquery_type(spec.dtype), "REPEATED" if shape else "NULLABLE")


def source_column(name: str, source_type: str) -> Column:
    """The column of a source column of `source_type` (a table's, a Parquet or Avro file's): the same type,
    REPEATED for an array of scalars; JSON text for what BigQuery rows cannot hold as is (a record, an array
    of arrays, an Avro union of types)."""
    if source_type.startswith("ARRAY<") and source_type.endswith(">"):
        inner = _SOURCE_TYPES.get(source_type[len("ARRAY<") : -1])
        return column(name, inner, "REPEATED") if inner else column(name, "STRING")
    return column(name, _SOURCE_TYPES.get(source_type, "STRING"))


def value_column(name: str, value: Any) -> Column:
    """The column of a field from its value in a first record read as Vertex AI reads JSON and CSV: a number
    (or an empty CSV cell) FLOAT, as the double it becomes; true/false BOOLEAN; an array of numbers REPEATED
    FLOAT; text, and anything else as JSON text, STRING."""
    if isinstance(value, bool):
        return column(name, "BOOLEAN")
    if value is None or isinstance(value, (int, float)):
        return column(name, "FLOAT")
    if isinstance(value, list) and value and all(_is_number(item) for item in value):
        return column(name, "FLOAT", "REPEATED")
    return column(name, "STRING")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return str(value)


def json_text(value: Any) -> str:
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def fit(value: Any, field: Column) -> Any:
    """`value` as the column `field` holds it, or NO_FIT: numbers in number columns (a whole float in an
    INTEGER one), text or JSON text in STRING, base64 in BYTES (of bytes, of {"b64": ...}, or of text), dates
    and times as ISO text."""
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        if not isinstance(value, list):
            return NO_FIT
        items = [fit(item, {"type": field["type"]}) for item in value]
        return NO_FIT if any(item is NO_FIT or item is None for item in items) else items
    kind = field["type"]
    if isinstance(value, Decimal):
        value = str(value) if kind in (*_NUMERIC_TYPES, "STRING") else float(value)
    elif isinstance(value, (datetime.date, datetime.time)):
        value = value.isoformat()
    if kind == "INTEGER":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else NO_FIT
    if kind == "FLOAT":
        return float(value) if _is_number(value) else NO_FIT
    if kind in _NUMERIC_TYPES:
        return value if _is_number(value) or (isinstance(value, str) and _is_decimal(value)) else NO_FIT
    if kind == "BOOLEAN":
        return value if isinstance(value, bool) else NO_FIT
    if kind == "BYTES":
        return _base64(value)
    if kind in _TIME_TYPES:
        return value if isinstance(value, str) else NO_FIT
    return value if isinstance(value, str) else json_text(value)  # STRING, and any other type


def _base64(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, str):
        return base64.b64encode(value.encode("utf-8")).decode("ascii")
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return value["b64"]
    return NO_FIT


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def fitted(values: dict[str, Any], columns: list[Column]) -> tuple[dict[str, Any], bool]:
    """A row of `columns` from `values` (a value that does not fit is NULL), and whether every value fit."""
    row: dict[str, Any] = {}
    kept = True
    for field in columns:
        value = fit(values.get(field["name"]), field)
        kept &= value is not NO_FIT
        row[field["name"]] = None if value is NO_FIT else value
    return row, kept
