"""Output rows: the model's outputs for each instance, keyed, as JSON lines or BigQuery rows, and the
BigQuery schema that holds them, derived from the serving signature at launch.

* A single float output of shape (batch, C), C >= 2, keeps the 2017 sample's contract: `key`,
  `prediction` (argmax), `confidence` (max score), `pred0..predC-1`.
* Any other signature: `key` plus one field per output, named after it: a number (or text) for a
  scalar per instance, an array for a vector (BigQuery REPEATED), and JSON text for anything of
  rank 2 or more. tf.string outputs are text; one whose name ends in `_bytes` (the TF Serving /
  Vertex AI convention for binary values) is base64 (BigQuery BYTES).
* Fields listed in `included_fields` are copied from the input record to the row, so predictions
  join back to their rows (not Vertex AI's includedFields, which choose what feeds the model).
* `shape=VERTEX` lays rows out as Vertex AI batch prediction does (see vertex_rows, and vertex_errors for
  its dead letters); the version and the included fields are added the same way.

An instance whose float outputs are NaN or infinite, or whose text output is not UTF-8, becomes
a dead letter instead of a row: BigQuery would refuse such a row and fail the whole load.
Floats are written with the shortest decimal that round-trips the model's float32.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import orjson

from pipeline.data.batches import ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason, Rejection, utc_now
from pipeline.data.instances import KEY_INT, KEY_POSITION
from pipeline.data.seed_lines import INT64_MAX, INT64_MIN
from pipeline.data.values import bigquery_type, json_values
from pipeline.data.vertex_errors import errors_schema, vertex_dead_letter
from pipeline.data.vertex_rows import KEYED, VertexShape, vertex_rows, vertex_schema
from pipeline.model.signatures import TensorSpec

MODEL_VERSION = "model_version"
ROWS, VERTEX = "rows", "vertex"  # output shapes


def class_columns(num_classes: int) -> list[str]:
    return [f"pred{index}" for index in range(num_classes)]


def classes_of(outputs: tuple[TensorSpec, ...]) -> int | None:
    """C when the outputs are the classifier contract's one float (batch, C) output with C >= 2."""
    if len(outputs) == 1 and outputs[0].is_floating and len(outputs[0].shape) == 1:
        classes = outputs[0].shape[0]
        return classes if classes is not None and classes >= 2 else None
    return None


def included_type(value: Any) -> str:
    """The BigQuery type an included field gets, from its value in the first record (or its column)."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, bytes):
        return "BYTES"
    return "STRING"


def _coerce(value: Any, bq_type: str) -> Any:
    """An included value as its column takes it; a Rejection when it cannot be."""
    if value is None:
        return None
    if isinstance(value, Decimal):  # BigQuery NUMERIC and BIGNUMERIC columns
        value = float(value)
    elif isinstance(value, (datetime.date, datetime.time)):  # DATE, DATETIME, TIMESTAMP, TIME columns
        value = value.isoformat()
    if bq_type == "BOOLEAN" and isinstance(value, bool):
        return value
    if bq_type == "INTEGER" and type(value) is int and INT64_MIN <= value <= INT64_MAX:  # not a bool
        return value  # INTEGER is 64-bit, in BigQuery and in Parquet: a larger one is the record's dead letter
    if bq_type == "FLOAT" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if bq_type == "BYTES" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if bq_type == "STRING":
        if isinstance(value, str):
            return value
        return orjson.dumps(value, default=str).decode("utf-8")
    return Rejection(Reason.WRONG_TYPE, f"included field value {value!r:.40} does not fit its {bq_type} column")


@dataclass(frozen=True)
class RowLayout:
    """How rows are made for one job: from the signature's outputs, the key and the included fields."""

    outputs: tuple[TensorSpec, ...]
    key_field: str = "key"
    key_kind: str = KEY_INT
    included: tuple[tuple[str, str], ...] = ()  # (field, BigQuery type)
    versioned: bool = False  # a versioned model folder: each row says which version scored it
    shape: str = ROWS  # or VERTEX: Vertex AI batch prediction's instance/key and prediction
    inputs: tuple[TensorSpec, ...] = ()  # what the instances feed (Vertex AI's shape writes the instance)
    vertex: VertexShape = KEYED  # how Vertex AI's shape writes instances, keys and errors

    @property
    def classes(self) -> int | None:
        return classes_of(self.outputs)

    def schema(self) -> dict[str, Any]:
        """The BigQuery schema of the prediction table."""
        if self.shape == VERTEX:
            fields = vertex_schema(self.inputs, self._vertex_key_type, self.vertex_in_effect)["fields"]
            return {"fields": fields + self._added_fields()}
        key_type = "INTEGER" if self.key_kind == KEY_INT else "STRING"
        fields = [{"name": self.key_field, "type": key_type, "mode": "REQUIRED"}]
        classes = self.classes
        if classes is not None:
            fields += [
                {"name": "prediction", "type": "INTEGER", "mode": "REQUIRED"},
                {"name": "confidence", "type": "FLOAT", "mode": "REQUIRED"},
            ]
            fields += [{"name": name, "type": "FLOAT", "mode": "REQUIRED"} for name in class_columns(classes)]
        else:
            fields += [_output_field(spec) for spec in self.outputs]
        return {"fields": fields + self._added_fields()}

    @property
    def vertex_in_effect(self) -> VertexShape:
        """The Vertex AI shape, keyed only where a key field was given and the records have one."""
        keyed = self.vertex.keyed and self.key_kind != KEY_POSITION
        return self.vertex if keyed == self.vertex.keyed else dataclasses.replace(self.vertex, keyed=keyed)

    @property
    def _vertex_key_type(self) -> str | None:
        """The type of Vertex AI's `key` column, None where the instance is written instead."""
        if not self.vertex_in_effect.keyed:
            return None
        return "INTEGER" if self.key_kind == KEY_INT else "STRING"

    def vertex_columns(self) -> list[dict[str, Any]]:
        """The columns before `prediction` (or `errors`) in Vertex AI's tables: `key`, or the instance's."""
        return vertex_schema(self.inputs, self._vertex_key_type, self.vertex_in_effect)["fields"][:-1]

    def dead_letter_row(self, letter: DeadLetter, as_table: bool) -> dict[str, Any]:
        """A dead letter as Vertex AI writes a failed instance: a JSON line, or a row of its errors table."""
        return vertex_dead_letter(letter, self.vertex_in_effect, self.vertex_columns(), as_table, self.included)

    def dead_letter_schema(self) -> dict[str, Any]:
        """The BigQuery schema of Vertex AI's errors table: the key or instance columns, then `errors`, then the
        attached fields (as they follow a prediction)."""
        return errors_schema(self.vertex_columns(), self.included)

    def _added_fields(self) -> list[dict[str, Any]]:
        """The columns after the predictions: the model version, then the included fields."""
        fields = [{"name": MODEL_VERSION, "type": "INTEGER", "mode": "NULLABLE"}] if self.versioned else []
        return fields + [{"name": name, "type": bq_type, "mode": "NULLABLE"} for name, bq_type in self.included]

    def split(self, scored: ScoredBatch) -> tuple[ScoredBatch | None, list[DeadLetter]]:
        """The instances that make rows, and a dead letter for each that cannot (non-finite or undecodable outputs)."""
        bad = np.zeros(len(scored), dtype=bool)
        reasons: dict[int, Rejection] = {}
        for spec in self.outputs:
            array = scored.outputs[spec.name]
            if array.dtype.kind == "f":
                non_finite = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
                for index in np.flatnonzero(non_finite & ~bad):
                    values = array[index].tolist()
                    message = f"the model returned NaN or infinite values in output '{spec.name}': {values}"
                    reasons[int(index)] = Rejection(Reason.NON_FINITE_SCORE, message[:2000])
                bad |= non_finite
            elif array.dtype == object and not _is_bytes_output(spec):
                for position in range(len(array)):
                    if not bad[position] and not _all_utf8(array[position]):
                        reasons[position] = Rejection(
                            Reason.UNENCODABLE_OUTPUT,
                            f"output '{spec.name}' is not UTF-8 text (name it '{spec.name}_bytes' to get base64)",
                        )
                        bad[position] = True
        if not bad.any():
            return scored, []
        timestamp = utc_now()
        letters = [
            scored.instances.dead_letter(index, reasons[index], timestamp=timestamp) for index in sorted(reasons)
        ]
        return (scored.select(~bad) if not bad.all() else None), letters

    def rows(self, scored: ScoredBatch, as_table: bool = False) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
        """One row per instance; an instance whose included field does not fit its column is a dead letter."""
        instances = scored.instances
        keys = instances.keys.tolist()
        classes = self.classes
        if self.shape == VERTEX:
            shape = self.vertex_in_effect
            rows = vertex_rows(scored, self.outputs, self.inputs, shape, shape.keyed, as_table)
        elif classes is not None:
            rows = _classifier_rows(self.key_field, keys, scored.outputs[self.outputs[0].name], classes)
        else:
            columns = {spec.name: _output_values(spec, scored.outputs[spec.name]) for spec in self.outputs}
            rows = [{self.key_field: key} for key in keys]
            for name, values in columns.items():
                for row, value in zip(rows, values, strict=True):
                    row[name] = value
        if self.versioned:
            for row in rows:
                row[MODEL_VERSION] = scored.model_version
        if not self.included or instances.included is None:
            return rows, []
        kept, letters = [], []
        for index, (row, fields) in enumerate(zip(rows, instances.included, strict=True)):
            for name, bq_type in self.included:
                value = _coerce(fields.get(name), bq_type)
                if isinstance(value, Rejection):
                    letters.append(instances.dead_letter(index, value))
                    break
                row[name] = value
            else:
                kept.append(row)
        return kept, letters


def _is_bytes_output(spec: TensorSpec) -> bool:
    return spec.dtype == "string" and spec.name.endswith("_bytes")


def _all_utf8(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return all(_all_utf8(item) for item in value.ravel())
    if isinstance(value, bytes):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _output_field(spec: TensorSpec) -> dict[str, Any]:
    bq_type = "BYTES" if _is_bytes_output(spec) else bigquery_type(spec.dtype)
    if len(spec.shape) == 0:
        return {"name": spec.name, "type": bq_type, "mode": "REQUIRED"}
    if len(spec.shape) == 1:
        return {"name": spec.name, "type": bq_type, "mode": "REPEATED"}
    return {"name": spec.name, "type": "STRING", "mode": "REQUIRED"}  # JSON text of a nested array


def _text(value: Any, as_base64: bool) -> Any:
    if isinstance(value, list):
        return [_text(item, as_base64) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii") if as_base64 else value.decode("utf-8")
    return value


def _output_values(spec: TensorSpec, array: np.ndarray) -> list[Any]:
    """The per-instance values of one output, as JSON-ready Python values."""
    if array.dtype == object:
        as_base64 = _is_bytes_output(spec)
        values = [_text(value.tolist() if isinstance(value, np.ndarray) else value, as_base64) for value in array]
    else:
        values = json_values(array)
    if len(spec.shape) >= 2:
        return [orjson.dumps(value).decode("utf-8") for value in values]
    return values


def _classifier_rows(key_field: str, keys: list[Any], scores: np.ndarray, classes: int) -> list[dict[str, Any]]:
    columns = class_columns(classes)
    predictions = scores.argmax(axis=1).tolist()
    confidences = json_values(scores.max(axis=1))
    score_lists = json_values(scores)
    rows = []
    for key, prediction, confidence, values in zip(keys, predictions, confidences, score_lists, strict=True):
        row = {key_field: key, "prediction": prediction, "confidence": confidence}
        row.update(zip(columns, values, strict=True))
        rows.append(row)
    return rows


def json_lines(rows: list[dict[str, Any]]) -> str:
    """Rows as JSON lines, one string per batch (what a text sink writes as one element)."""
    return "\n".join(orjson.dumps(row).decode("utf-8") for row in rows)
