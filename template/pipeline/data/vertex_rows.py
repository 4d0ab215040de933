"""Rows and dead letters shaped as Vertex AI batch prediction writes them (`output_shape=vertex`), so that
code reading Vertex AI's output reads the template's unchanged.

* A prediction: `{"instance": <the instance as fed to the model>, "prediction": <its outputs>}`, or
  `{"key": <key>, "prediction": ...}` where records have a key field; the prediction is the one output's
  value, or an object of every output by name.
* A dead letter: `{"instance": <the record as read>, "error": {"code": 3, "message": ...}}`, google.rpc
  Status's code 3 (INVALID_ARGUMENT) and a message that says why, and where the record was.
* In BigQuery: the key (where there is one), the instance's inputs as columns, and `prediction` as JSON
  text; dead letters: `instance` as JSON text and `errors` as a STRUCT of code and message (Vertex AI
  writes the instance's columns there; a record that could not be read has none, so it is one column).
* A versioned model's `model_version` and the fields copied to the output (`included_fields`, and
  `excluded_fields` where records have no key, as Vertex AI attaches them) follow as top-level fields.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from pipeline.data.batches import ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.values import bigquery_type, json_values
from pipeline.model.signatures import TensorSpec

INVALID_ARGUMENT = 3  # google.rpc.Code: what Vertex AI reports for an instance it could not predict
DEAD_LETTER_SCHEMA = {
    "fields": [
        {"name": "instance", "type": "STRING", "mode": "NULLABLE"},
        {
            "name": "errors",
            "type": "RECORD",
            "mode": "NULLABLE",
            "fields": [
                {"name": "code", "type": "INTEGER", "mode": "NULLABLE"},
                {"name": "message", "type": "STRING", "mode": "NULLABLE"},
            ],
        },
    ]
}


def _json_ready(value: Any) -> Any:
    """A value of a text array (bytes, or nested arrays of bytes) as JSON; bytes as Vertex AI's {"b64": ...}."""
    if isinstance(value, np.ndarray):
        return [_json_ready(item) for item in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    return value


def per_instance(array: np.ndarray) -> list[Any]:
    """An array's values, one per instance, as JSON values: numbers in the shortest decimal that round-trips
    their dtype (a float32 0.1 is 0.1, not 0.10000000149011612), text as text."""
    if array.dtype == object:
        return [_json_ready(value) for value in array]
    return json_values(array)


def vertex_rows(
    scored: ScoredBatch,
    outputs: tuple[TensorSpec, ...],
    keyed: bool,
    array_input: str | None,
    as_table: bool,
    inputs: tuple[TensorSpec, ...] = (),
) -> list[dict[str, Any]]:
    """A batch's rows: JSON objects for files and topics, or BigQuery rows (the `inputs` as columns).

    The prediction is the one output's value, or every output by name; the instance is the array of an
    array instance, or the object of inputs by name.
    """
    instances = scored.instances
    keys = instances.keys.tolist()
    predicted = {spec.name: per_instance(scored.outputs[spec.name]) for spec in outputs}
    fed = {name: per_instance(array) for name, array in instances.features.items()}
    as_text = {spec.name for spec in inputs if _is_text_column(spec)}
    rows = []
    for index, key in enumerate(keys):
        prediction = (
            predicted[outputs[0].name][index]
            if len(outputs) == 1
            else {name: values[index] for name, values in predicted.items()}
        )
        instance = {name: values[index] for name, values in fed.items()}
        if as_table:
            row = {"key": key} if keyed else {}
            for name, value in instance.items():
                if array_input is None or name == array_input:
                    row["instance" if name == array_input else name] = _column_value(value, name in as_text)
            row["prediction"] = orjson.dumps(prediction).decode("utf-8")
        elif keyed:
            row = {"key": key, "prediction": prediction}
        else:
            row = {"instance": instance[array_input] if array_input is not None else instance, "prediction": prediction}
        rows.append(row)
    return rows


def _is_text_column(spec: TensorSpec) -> bool:
    """An input kept in BigQuery as JSON text, since BigQuery arrays cannot nest: two or more dimensions,
    or an array of text (whose bytes may be {"b64": ...})."""
    return len(spec.shape) >= 2 or (spec.dtype == "string" and bool(spec.shape))


def _column_value(value: Any, as_text: bool) -> Any:
    """An instance's value as its column holds it: JSON text for a matrix or an array of text (whose bytes
    may be {"b64": ...}) and for bytes that are not UTF-8; a scalar or a vector of numbers as it is."""
    if as_text or isinstance(value, dict):
        return orjson.dumps(value).decode("utf-8")
    return value


def vertex_schema(inputs: tuple[TensorSpec, ...], key_type: str | None, array_input: str | None) -> dict[str, Any]:
    """The BigQuery schema of Vertex AI's predictions table: key, the instance's inputs, prediction (JSON)."""
    fields = [{"name": "key", "type": key_type, "mode": "NULLABLE"}] if key_type else []
    for spec in inputs:
        name = "instance" if spec.name == array_input else spec.name
        if _is_text_column(spec):
            fields.append({"name": name, "type": "STRING", "mode": "NULLABLE"})
            continue
        fields.append(
            {"name": name, "type": bigquery_type(spec.dtype), "mode": "REPEATED" if spec.shape else "NULLABLE"}
        )
    fields.append({"name": "prediction", "type": "STRING", "mode": "NULLABLE"})
    return {"fields": fields}


def record_as_read(payload: bytes) -> Any:
    """A dead letter's record as Vertex AI writes an instance it could not predict: its JSON where it is
    JSON, else its text, else {"b64": ...}."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(payload).decode("ascii")}


def vertex_dead_letter(letter: DeadLetter, as_table: bool) -> dict[str, Any]:
    """A dead letter in Vertex AI's error shape, its reason and where it was in the message."""
    where = f" ({letter.position or letter.origin})" if letter.position or letter.origin else ""
    error = {"code": INVALID_ARGUMENT, "message": f"{letter.reason}: {letter.message}{where}"}
    record = record_as_read(letter.payload)
    if as_table:
        return {"instance": orjson.dumps(record).decode("utf-8"), "errors": error}
    return {"instance": record, "error": error}
