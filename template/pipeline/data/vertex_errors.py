"""Dead letters shaped as Vertex AI writes the instances it could not predict (`output_shape=vertex`).

Google describes the error record two ways. BatchPredictionJob.OutputConfig (the job's own reference): a
failed instance "followed by an additional `error` field which as value has google.rpc.Status containing
only `code` and `message`", and in BigQuery an `errors` column, a STRUCT of `code` and `message`. The
schema PredictionResult: `"error": {"status": "<google.rpc.Code name>", "message": ...}`. The first is
followed (`{"instance" | "key": ..., "error": {"code": 3, "message": ...}}`); `--vertex_error=status`
writes the second in JSON lines.

The code is the google.rpc.Code the failure carried (a TensorFlow error's own: InvalidArgumentError is 3, as
TensorFlow Serving answers; RESOURCE_EXHAUSTED for memory), else the one of its kind (`REASON_CODES`); the
message says the reason, why, and where the record was. The instance is the record as Vertex AI would have
sent it, as predictions write it (vertex_rows: its JSON, or a CSV line's fields by the header, with
includedFields / excludedFields applied; a listed file's URI; a TFRecord record as {"b64": ...}); a row the
output refused is its prediction row's instance. The attached fields follow, as they follow a prediction. In
BigQuery the errors table has the instance's columns (or `key`), then `errors`, then the attached fields; a
value that fits no column is NULL there, and the message then ends with the record as read, so that nothing
is lost.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.data.vertex_columns import Column, column, fitted
from pipeline.data.vertex_rows import (
    ARRAY,
    B64,
    INSTANCE,
    URI,
    VertexShape,
    b64,
    fields_sent,
    instance_of,
    instance_values,
    record_as_read,
)

# google.rpc.Code (google/rpc/code.proto): the numbers and names used here.
CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
UNKNOWN, INVALID_ARGUMENT, OUT_OF_RANGE, INTERNAL, DATA_LOSS = 2, 3, 11, 13, 15

# Each dead-letter reason's google.rpc.Code: a record that does not fit the model is INVALID_ARGUMENT (what
# Vertex AI reports for an instance its model refuses); a key beyond int64, OUT_OF_RANGE; the model (or a
# user-defined function) failing on a record, or returning what cannot be written, INTERNAL (where the error
# carries no code of its own); damaged input, DATA_LOSS; a row the output refused for good for its content
# (a value its column cannot hold, a row too large), INVALID_ARGUMENT.
REASON_CODES = {
    Reason.NOT_UTF8: INVALID_ARGUMENT,
    Reason.EMPTY: INVALID_ARGUMENT,
    Reason.MISSING_KEY: INVALID_ARGUMENT,
    Reason.BAD_KEY: INVALID_ARGUMENT,
    Reason.KEY_OUT_OF_RANGE: OUT_OF_RANGE,
    Reason.WRONG_VALUE_COUNT: INVALID_ARGUMENT,
    Reason.NON_NUMERIC: INVALID_ARGUMENT,
    Reason.NON_FINITE: INVALID_ARGUMENT,
    Reason.NULL_FIELD: INVALID_ARGUMENT,
    Reason.INFERENCE_FAILED: INTERNAL,
    Reason.NON_FINITE_SCORE: INTERNAL,
    Reason.NOT_JSON: INVALID_ARGUMENT,
    Reason.BAD_CSV: INVALID_ARGUMENT,
    Reason.MISSING_FIELD: INVALID_ARGUMENT,
    Reason.WRONG_TYPE: INVALID_ARGUMENT,
    Reason.WRONG_SHAPE: INVALID_ARGUMENT,
    Reason.NOT_AN_EXAMPLE: INVALID_ARGUMENT,
    Reason.UNENCODABLE_OUTPUT: INTERNAL,
    Reason.TRUNCATED_INPUT: DATA_LOSS,
    Reason.CORRUPT_INPUT: DATA_LOSS,
    Reason.CHECKSUM_MISMATCH: DATA_LOSS,
    Reason.INCOMPLETE_READ: DATA_LOSS,
    Reason.OUTPUT_REJECTED: INVALID_ARGUMENT,
    Reason.UDF_ERROR: INTERNAL,  # a user-defined function failed on the record, as a custom container would
}
RECORD_EXCERPT = 2000  # characters of a record added to a table's error message when its columns cannot hold it
ERRORS_COLUMN = {
    "name": "errors",
    "type": "RECORD",
    "mode": "NULLABLE",
    "fields": [
        {"name": "code", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "message", "type": "STRING", "mode": "NULLABLE"},
    ],
}
Attached = tuple[tuple[str, str], ...]  # the fields attached after the instance: (name, BigQuery type)


def rpc_code(reason: str) -> int:
    """The google.rpc.Code of a dead letter's reason (UNKNOWN for a reason this table does not know)."""
    return REASON_CODES.get(reason, UNKNOWN)


def letter_code(letter: DeadLetter) -> int:
    """The code the failure carried (a model error's own), else its reason's."""
    return letter.code if letter.code in CODE_NAMES else rpc_code(letter.reason)


def error_message(letter: DeadLetter) -> str:
    """The reason, why, and where the record was."""
    where = letter.position or letter.origin
    return f"{letter.reason}: {letter.message}" + (f" ({where})" if where else "")


def vertex_dead_letter(
    letter: DeadLetter,
    shape: VertexShape,
    columns: list[Column] | None = None,
    as_table: bool = False,
    attached: Attached = (),
) -> dict[str, Any]:
    """A dead letter in Vertex AI's error shape: a JSON line (`as_table` False), or a row of the errors table
    whose columns before `errors` are `columns` (the predictions table's key or instance columns) and after it
    the `attached` fields."""
    columns = columns or []
    if letter.reason == Reason.OUTPUT_REJECTED and isinstance(row := _json_object(letter.payload), dict):
        return _refused_row(letter, row, shape, columns, as_table, attached)
    if shape.instance == URI:
        record: Any = letter.origin  # a listed file's instance is its URI
    elif shape.instance == B64:
        record = b64(letter.payload)
    else:
        record = record_as_read(letter.payload, shape.csv_header)
    key = record.get(shape.key_field) if shape.keyed and isinstance(record, dict) else None
    fields = record if isinstance(record, dict) else {}
    if as_table:
        return _table_row(letter, record, key, shape, columns, fields, attached)
    head: dict[str, Any] = {"key": key} if key is not None else {INSTANCE: instance_of(record, shape, shape.keyed)}
    return _line(letter, head, fields, attached, shape)


def _line(
    letter: DeadLetter, head: dict[str, Any], fields: dict[str, Any], attached: Attached, shape: VertexShape
) -> dict[str, Any]:
    """An error line: the key or instance, `error`, then the attached fields the record has."""
    code, message = letter_code(letter), error_message(letter)
    status: dict[str, Any] = {"status": CODE_NAMES[code]} if shape.error_status else {"code": code}
    line = {**head, "error": {**status, "message": message}}
    line.update((name, fields[name]) for name, _ in attached if name in fields and name not in line)
    return line


def _table_row(
    letter: DeadLetter,
    record: Any,
    key: Any,
    shape: VertexShape,
    columns: list[Column],
    fields: dict[str, Any],
    attached: Attached,
) -> dict[str, Any]:
    """A row of the errors table: the columns (`key`, or the instance's), `errors`, the attached fields. Where
    the columns cannot hold the record (a value of the wrong type, a field of no column, a record that is not
    fields, no key), the message ends with the record as read."""
    if shape.keyed:
        values: dict[str, Any] = {"key": key}
        kept = key is not None
    elif shape.instance in (URI, B64) or (shape.instance == ARRAY and not shape.array_fields):
        values, kept = {INSTANCE: record}, True
    else:
        values = instance_values(record, shape)
        names = {field["name"] for field in columns}
        sent = fields_sent(fields, shape, keyed=False) if isinstance(record, dict) else values
        kept = (bool(values) or record is None) and all(value is None or name in names for name, value in sent.items())
    row, fit_all = fitted(values, columns)
    extra, extra_fit = fitted(fields, attached_columns(attached))
    message = error_message(letter)
    if not (kept and fit_all and extra_fit):
        text = letter.origin if shape.instance == URI else letter.payload.decode("utf-8", "replace")
        message += f"; the record: {text[:RECORD_EXCERPT]}"
    return {**row, "errors": {"code": letter_code(letter), "message": message}, **extra}


def _json_object(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _refused_row(
    letter: DeadLetter,
    row: dict[str, Any],
    shape: VertexShape,
    columns: list[Column],
    as_table: bool,
    attached: Attached,
) -> dict[str, Any]:
    """A prediction row the output refused (the letter's payload): the key or instance columns it holds (not
    its prediction), then the attached fields."""
    if as_table:
        values, fit_all = fitted(row, columns)
        extra, extra_fit = fitted(row, attached_columns(attached))
        message = error_message(letter)
        if not (fit_all and extra_fit):
            message += f"; the record: {letter.payload.decode('utf-8', 'replace')[:RECORD_EXCERPT]}"
        return {**values, "errors": {"code": letter_code(letter), "message": message}, **extra}
    if shape.keyed:
        head: dict[str, Any] = {"key": row.get("key")}
    elif [field["name"] for field in columns] == [INSTANCE]:
        head = {INSTANCE: b64_text(row.get(INSTANCE)) if shape.instance == B64 else row.get(INSTANCE)}
    elif shape.instance == ARRAY and shape.array_fields:
        head = {INSTANCE: [row.get(name) for name in shape.array_fields]}
    else:
        head = {INSTANCE: {field["name"]: row[field["name"]] for field in columns if field["name"] in row}}
    return _line(letter, head, row, attached, shape)


def b64_text(value: Any) -> Any:
    """A BYTES column's base64 text as JSON's {"b64": ...}."""
    return {"b64": value} if isinstance(value, str) else value


def attached_columns(attached: Attached) -> list[Column]:
    return [column(name, kind) for name, kind in attached]


def errors_schema(columns: list[Column], attached: Attached = ()) -> dict[str, Any]:
    """The BigQuery schema of Vertex AI's errors table: the instance's columns (or `key`), then `errors`, then
    the attached fields."""
    return {"fields": [*columns, ERRORS_COLUMN, *attached_columns(attached)]}
