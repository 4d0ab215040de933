"""Prediction rows shaped as Vertex AI batch prediction writes them (`output_shape=vertex`), so that code
reading Vertex AI's output reads the template's unchanged. Sources: the API reference of BatchPredictionJob
(InstanceConfig, OutputConfig) and the guide "Get batch predictions from a custom trained model".

* A prediction: `{"instance": <instance>, "prediction": <prediction>}`, or `{"key": <key>, "prediction": ...}`
  where a key field was given (InstanceConfig.keyField). The prediction is the one output's value, or an
  object of every output by name; a tensor named `*_bytes` is always `{"b64": ...}`, as in TensorFlow
  Serving's JSON, and other bytes are text where they are UTF-8.
* The instance is "the prediction instance that is sent to the Model" (InstanceConfig): the record as read,
  not as fed (a JSON number keeps its digits, a field the model does not take stays), made what Vertex AI
  sends (`VertexShape.instance`): OBJECT, the record's fields (includedFields, or all but excludedFields);
  ARRAY, the array of those fields in order (instanceType array); PER_LINE, a JSON Lines record's own form
  (an array line stays an array); URI, a listed file's path (Vertex AI writes a file list's Cloud Storage
  URI); B64, a TFRecord record or a message body as `{"b64": ...}`.
* In BigQuery: the instance's columns (or `key` in their place; `vertex_columns` types them), then
  `prediction` as JSON text. An array line fills the column of the model's one input, as the object it
  stands for; an array instance of no named fields, one `instance` column.
* A versioned model's `model_version` and the attached fields (`included_fields`; `excluded_fields` where no
  key was given, as Vertex AI attaches them) follow as top-level fields (data.rows adds them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from pipeline.data.batches import ColumnBatch, InstanceBatch, RowBatch, ScoredBatch, SourceBatch
from pipeline.data.decoders.csv_typing import split_csv_line, typed
from pipeline.data.values import json_values
from pipeline.data.vertex_columns import Column, fitted, is_bytes_tensor, tensor_column
from pipeline.model.signatures import TensorSpec

OBJECT, ARRAY, PER_LINE, URI, B64 = "object", "array", "per_line", "uri", "b64"  # what an instance is
INSTANCE = "instance"  # the one column of an instance that has no field names (an array line, a URI, bytes)


@dataclass(frozen=True)
class VertexShape:
    """How this job's lines and tables follow Vertex AI's: decided at launch from the options and the format."""

    keyed: bool = True  # a key field was given: `key` in place of the instance
    instance: str = OBJECT
    array_input: str | None = None  # the one input an ARRAY or PER_LINE instance fills
    array_fields: tuple[str, ...] = ()  # the fields an ARRAY instance is made of, in order (its table columns)
    key_input: TensorSpec | None = None  # not keyed, yet the model takes the key field: it is part of the instance
    key_field: str = "key"
    error_status: bool = False  # errors as {"status": "<Code name>", ...} (schema.PredictionResult)
    csv_header: tuple[str, ...] = ()  # to read a CSV line's fields
    instance_fields: tuple[str, ...] = ()  # InstanceConfig.includedFields
    excluded: tuple[str, ...] = ()  # InstanceConfig.excludedFields
    source_columns: tuple[tuple[str, str, str], ...] = ()  # (name, type, mode) of the records' fields, in order


KEYED = VertexShape()  # the default: a key field was given, and objects are fed by name


def b64(value: bytes) -> dict[str, str]:
    return {"b64": base64.b64encode(value).decode("ascii")}


def _json_ready(value: Any, as_b64: bool) -> Any:
    """A value of a text array (bytes, or nested arrays of bytes) as JSON: text, or {"b64": ...}."""
    if isinstance(value, np.ndarray):
        return [_json_ready(item, as_b64) for item in value]
    if isinstance(value, bytes):
        if not as_b64:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return b64(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def per_instance(array: np.ndarray, as_b64: bool = False) -> list[Any]:
    """An array's values, one per instance, as JSON values: numbers in the shortest decimal that round-trips
    their dtype (a float32 0.1 is 0.1, not 0.10000000149011612); bytes as text, or {"b64": ...} where they are
    not UTF-8 or `as_b64` (a `*_bytes` tensor)."""
    if array.dtype == object:
        return [_json_ready(value, as_b64) for value in array]
    return json_values(array)


# ------------------------------------------------------------------ the record as read, and its instance


def record_as_read(payload: bytes, csv_header: tuple[str, ...] = ()) -> Any:
    """A record's value: a CSV line's fields by the header (Vertex AI's typing) where the job reads CSV, else
    its JSON; its text where it is neither; {"b64": ...} where it is not text."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return b64(payload)
    if csv_header:
        cells = split_csv_line(text.strip("\r\n"))
        if cells is not None and len(cells) == len(csv_header):
            return {name: typed(value, quoted) for name, (value, quoted) in zip(csv_header, cells, strict=True)}
        return text
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return text


def source_records(
    source: SourceBatch, positions: np.ndarray, shape: VertexShape, as_table: bool
) -> Callable[[int], Any]:
    """The record at a position of `source` (one of `positions`) as read: a table's (or a UDF's) row as it is
    for a table, or as JSON values for a line; a line's JSON or CSV fields."""
    if isinstance(source, (RowBatch, ColumnBatch)):
        if isinstance(source, RowBatch):
            rows: Any = source.rows
        else:  # only the rows of these instances, made dicts
            rows = dict(zip(positions.tolist(), source.table.take(positions).to_pylist(), strict=True))
        if as_table:
            return rows.__getitem__
        return lambda position: orjson.loads(_row_json(rows[position]))
    return lambda position: record_as_read(source.payload_of(position), shape.csv_header)


def _row_json(row: dict[str, Any]) -> bytes:
    """A row as JSON, as a row's dead letter holds it: BYTES as base64 (as BigQuery's JSON export writes
    them), other values JSON lacks (NUMERIC, dates) as text."""

    def default(value: Any) -> str:
        return base64.b64encode(value).decode("ascii") if isinstance(value, bytes) else str(value)

    return orjson.dumps(row, default=default, option=orjson.OPT_NON_STR_KEYS)


def fields_sent(record: dict[str, Any], shape: VertexShape, keyed: bool) -> dict[str, Any]:
    """The fields of a record Vertex AI sends: includedFields, or all but excludedFields (and the key field)."""
    if shape.instance_fields:
        return {name: record[name] for name in shape.instance_fields if name in record}
    dropped = {*shape.excluded, *((shape.key_field,) if keyed else ())}
    return {name: value for name, value in record.items() if name not in dropped}


def instance_of(record: Any, shape: VertexShape, keyed: bool = False) -> Any:
    """What Vertex AI sends of a record: its fields (in the array's order for an array instance), or the
    record itself where it is not fields (an array line, text)."""
    if not isinstance(record, dict):
        return record
    if shape.instance == ARRAY and shape.array_fields:
        return [record.get(name) for name in shape.array_fields]
    return fields_sent(record, shape, keyed)


def instance_values(record: Any, shape: VertexShape) -> dict[str, Any]:
    """A record's instance by column name (the columns of `instance_columns`), where it is fields."""
    if isinstance(record, list):
        if shape.array_fields:
            return dict(zip(shape.array_fields, record, strict=False)) if len(record) == len(shape.array_fields) else {}
        if shape.instance == ARRAY:
            return {INSTANCE: record}
        return {shape.array_input: record} if shape.array_input else {}
    if not isinstance(record, dict):
        return {}
    if shape.instance == ARRAY and shape.array_fields:
        return {name: record.get(name) for name in shape.array_fields}
    return fields_sent(record, shape, keyed=False)


def _prediction(outputs: tuple[TensorSpec, ...], predicted: dict[str, list[Any]], index: int) -> Any:
    if len(outputs) == 1:
        return predicted[outputs[0].name][index]
    return {name: values[index] for name, values in predicted.items()}


def vertex_rows(
    scored: ScoredBatch,
    outputs: tuple[TensorSpec, ...],
    inputs: tuple[TensorSpec, ...],
    shape: VertexShape,
    keyed: bool,
    as_table: bool,
) -> list[dict[str, Any]]:
    """A batch's rows: JSON objects for files and topics, or BigQuery rows (the instance's columns)."""
    instances = scored.instances
    keys = instances.keys.tolist()
    predicted = {spec.name: per_instance(scored.outputs[spec.name], is_bytes_tensor(spec.name)) for spec in outputs}
    columns = instance_columns(inputs, shape) if as_table and not keyed else []
    record_at = source_records(instances.source, instances.positions, shape, as_table)
    rows = []
    for index, key in enumerate(keys):
        prediction = _prediction(outputs, predicted, index)
        if keyed:
            row: dict[str, Any] = {"key": key}
        elif as_table:
            row = fitted(_table_instance(shape, instances, index, key, record_at), columns)[0]
        else:
            row = {INSTANCE: _instance(shape, instances, index, key, record_at)}
        row["prediction"] = orjson.dumps(prediction).decode("utf-8") if as_table else prediction
        rows.append(row)
    return rows


def _instance(
    shape: VertexShape, instances: InstanceBatch, index: int, key: Any, record_at: Callable[[int], Any]
) -> Any:
    """Instance `index` as Vertex AI writes it in a JSON line."""
    position = int(instances.positions[index])
    if shape.instance == URI:
        return key  # a whole file's key is its path
    if shape.instance == B64:
        return b64(instances.source.payload_of(position))
    return instance_of(record_at(position), shape)


def _table_instance(
    shape: VertexShape, instances: InstanceBatch, index: int, key: Any, record_at: Callable[[int], Any]
) -> dict[str, Any]:
    """Instance `index` by column name, for a BigQuery row."""
    if shape.instance in (URI, B64):
        return {INSTANCE: _instance(shape, instances, index, key, record_at)}
    return instance_values(record_at(int(instances.positions[index])), shape)


# ------------------------------------------------------------------ the tables' columns


def instance_columns(inputs: tuple[TensorSpec, ...], shape: VertexShape) -> list[Column]:
    """The instance's columns in Vertex AI's tables: the fields it is made of, typed by the source where
    the launch saw its fields (`shape.source_columns`), else by the model's inputs; or one `instance` column
    (a URI, a TFRecord record, an array of no named fields)."""
    if shape.instance == URI:
        return [{"name": INSTANCE, "type": "STRING", "mode": "NULLABLE"}]
    if shape.instance == B64:
        return [{"name": INSTANCE, "type": "BYTES", "mode": "NULLABLE"}]
    by_name = {spec.name: spec for spec in inputs}
    source = {name: {"name": name, "type": kind, "mode": mode} for name, kind, mode in shape.source_columns}
    if shape.instance == ARRAY and shape.array_input in by_name:
        spec = by_name[shape.array_input]
        if shape.array_fields:
            return [source.get(name) or tensor_column(name, spec, element=True) for name in shape.array_fields]
        return [tensor_column(INSTANCE, spec)]
    if source:
        sent = fields_sent(dict.fromkeys(source), shape, keyed=False)
        return [source[name] for name in sent]
    columns = [tensor_column(spec.name, spec) for spec in inputs]
    if shape.key_input is not None:
        columns.append(tensor_column(shape.key_field, shape.key_input))
    return columns


def vertex_schema(inputs: tuple[TensorSpec, ...], key_type: str | None, shape: VertexShape = KEYED) -> dict[str, Any]:
    """The BigQuery schema of Vertex AI's predictions table: `key` (where `key_type` is given) or the
    instance's columns, then `prediction` (JSON text)."""
    key = [{"name": "key", "type": key_type, "mode": "NULLABLE"}] if key_type else []
    fields = key or instance_columns(inputs, shape)
    return {"fields": [*fields, {"name": "prediction", "type": "STRING", "mode": "NULLABLE"}]}
