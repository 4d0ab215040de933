"""Prediction rows through a Python UDF after the model: a row in, a row out, before it is written.

For JSON Lines (files, Pub/Sub) the UDF may return any dict JSON can hold; for a table or Parquet output, a
row that fits the output's columns; NumPy values either way (`plain`: an argmax's `np.int64` is an INTEGER).
A field the schema lacks, a REQUIRED column missing, or a value of the wrong type is a `udf_error` dead
letter of that record, never a refused load.
What the UDF raises, or a value that is not a dict, is one too. Each dead letter is the record's that made
the row (its origin, payload and position).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason, Rejection, utc_now
from pipeline.data.rows import RowLayout
from pipeline.data.seed_lines import INT64_MAX, INT64_MIN
from pipeline.data.udf import UdfCode, UdfLoadError, describe, excerpt, function_of

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_INTEGERS = ("INTEGER", "INT64")
_FLOATS = ("FLOAT", "FLOAT64", "NUMERIC", "BIGNUMERIC")
_BOOLEANS = ("BOOLEAN", "BOOL")
_RECORDS = ("RECORD", "STRUCT")
_PYTHON_SCALARS = frozenset((str, int, float, bool, type(None), bytes))


def _value_problem(value: Any, field: dict[str, Any]) -> str | None:
    """Why one non-null value does not fit a column of its type; None where it does."""
    kind, name = field["type"], field["name"]
    wrong = f"column '{name}' is {kind}: {excerpt(value)} does not fit"
    if kind in _INTEGERS:
        fits = isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX
        return None if fits else wrong
    if kind in _FLOATS:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if fits else wrong
    if kind in _BOOLEANS:
        return None if isinstance(value, bool) else wrong
    if kind == "BYTES":  # rows hold bytes as base64 text, as BigQuery's JSON does
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return f"column '{name}' is BYTES: give base64 text; {excerpt(value)} is not"
        return None if isinstance(value, str) else wrong
    if kind in _RECORDS:
        return row_problem(value, field.get("fields", [])) if isinstance(value, dict) else wrong
    if kind == "JSON":
        return None
    return None if isinstance(value, str) else wrong  # STRING, and DATE, TIMESTAMP, ... as text


def plain(value: Any) -> Any:
    """NumPy's values as Python's (`np.int64` from an argmax, `np.float32`, an array as lists), in dicts and
    lists (tuples as lists) too: what a table's or Parquet's columns take, as JSON takes both."""
    if type(value) in _PYTHON_SCALARS:
        return value
    if isinstance(value, np.generic):  # np.float64 and np.str_ too, which are float's and str's subclasses
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {name: plain(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def row_problem(row: dict[str, Any], fields: Sequence[dict[str, Any]]) -> str | None:
    """Why a row does not fit a table's columns (BigQuery schema fields); None where it does."""
    names = [field["name"] for field in fields]
    unknown = [name for name in row if name not in names]
    if unknown:
        return f"the output has no column {', '.join(map(str, unknown[:5]))} (its columns: {', '.join(names)})"
    for field in fields:
        value = row.get(field["name"])
        mode = field.get("mode", "NULLABLE")
        if value is None:
            if mode == "REQUIRED":
                return f"column '{field['name']}' is REQUIRED, and the row has no value for it"
            continue
        if mode == "REPEATED":
            if not isinstance(value, list):
                return f"column '{field['name']}' is REPEATED: {excerpt(value)} is not a list"
            problem = next((found for item in value if (found := _value_problem(item, field))), None)
        else:
            problem = _value_problem(value, field)
        if problem:
            return problem
    return None


def row_instances(layout: RowLayout, scored: ScoredBatch, as_table: bool, letters: int) -> Sequence[int]:
    """The index in `scored` of the instance of each row `layout.rows` made: all of them in order unless
    some made none (`letters`: an included field that does not fit), which are found one by one."""
    if not letters:
        return range(len(scored))
    indices = []
    for index in range(len(scored)):
        one = ScoredBatch(
            scored.instances.slice(index, index + 1),
            {name: array[index : index + 1] for name, array in scored.outputs.items()},
            scored.model_version,
        )
        if layout.rows(one, as_table)[0]:
            indices.append(index)
    return indices


def after_model(
    code: UdfCode,
    instances: InstanceBatch,
    rows: list[dict[str, Any]],
    indices: Sequence[int],
    schema: dict[str, Any] | None,
) -> tuple[list[Any], list[DeadLetter]]:
    """Each row (of instance `indices[i]`) through the UDF `code.after`: JSON lines where `schema` is None,
    else rows checked against it; and the dead letters of those that give none."""
    assert code.after is not None, "a UDF runs after the model"
    name = code.after
    timestamp = utc_now()
    try:
        function = function_of(code, name)
    except UdfLoadError as error:
        rejection = Rejection(Reason.UDF_ERROR, str(error))
        return [], [instances.dead_letter(index, rejection, error.stacktrace, timestamp) for index in indices]
    written: list[Any] = []
    letters: list[DeadLetter] = []
    for index, row in zip(indices, rows, strict=True):
        try:
            result = function(row)
        except (Exception, SystemExit) as error:
            failure = describe(error, code.path, name)
            rejection = Rejection(Reason.UDF_ERROR, failure.message)
            letters.append(instances.dead_letter(index, rejection, failure.stacktrace, timestamp))
            continue
        problem = None
        if not isinstance(result, dict):
            problem = f"{name}() returned {excerpt(result)}: it must return a dict, the row to write"
        elif schema is None:
            try:
                written.append(orjson.dumps(result, option=_JSON_OPTIONS).decode("utf-8"))
            except TypeError as error:  # orjson's JSONEncodeError
                problem = f"{name}() returned a row JSON cannot hold: {error}"
        elif found := row_problem(result := plain(result), schema["fields"]):
            problem = f"{name}() returned a row that does not fit the output: {found}"
        else:
            written.append(result)
        if problem is not None:
            letters.append(instances.dead_letter(index, Rejection(Reason.UDF_ERROR, problem), timestamp=timestamp))
    return written, letters
