"""How records feed a serving signature by name: values checked and typed, instances batched.

A record (a JSON object, a CSV row, a table row) is a mapping of field names to values. Each
signature input takes the field of the same name, converted to the input's dtype and checked
against its shape (a `None` dimension takes any size); other fields are ignored. What does not
fit is rejected with a reason that names the field. Instances whose shapes differ (inputs with a
`None` dimension) cannot share one tensor, so they go to the model in separate batches.

The key (`key_field`) is copied to the output and fed to the model only where the signature has
an input of that name; a record without a key is keyed by its position.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from pipeline.data.batches import InstanceBatch, SourceBatch
from pipeline.data.dead_letters import Reason, Rejection
from pipeline.data.seed_lines import INT64_MAX, INT64_MIN
from pipeline.model.signatures import TensorSpec

KEY_INT = "int"
KEY_STR = "str"
KEY_POSITION = "position"
KEY_STR_OR_POSITION = "str_or_position"  # a message's own key field where it has one, else its id


@dataclass(frozen=True)
class Feeding:
    """What the records must hold and how they feed the model: decided at launch, from the
    signature and the first record, and the same for every worker."""

    inputs: tuple[TensorSpec, ...]  # the signature's inputs the records fill, the key input excepted
    key_field: str
    key_kind: str  # KEY_INT / KEY_STR: the record's field; KEY_POSITION: its position; or KEY_STR_OR_POSITION
    key_input: TensorSpec | None = None  # the signature input named key_field, fed the keys
    included_fields: tuple[str, ...] = ()
    array_fields: tuple[str, ...] = ()  # Vertex AI's array instances: these fields, in order, fill the one input

    @property
    def field_names(self) -> tuple[str, ...]:
        """The record fields that feed the model."""
        return self.array_fields or tuple(spec.name for spec in self.inputs)


def _excerpt(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _string_array(value: Any) -> np.ndarray | None:
    """A value for a tf.string input: text, bytes, or Vertex AI's {"b64": ...}, possibly nested in lists."""
    if isinstance(value, list):
        converted = [_string_array(item) for item in value]
        items = [item for item in converted if item is not None]
        if len(items) != len(converted):
            return None
        if not items:
            return np.empty((0,), dtype=object)
        shapes = {item.shape for item in items}
        if len(shapes) != 1:
            return None
        array: np.ndarray = np.empty((len(items), *items[0].shape), dtype=object)
        for index, item in enumerate(items):
            array[index] = item
        return array
    scalar = _as_bytes(value)
    if scalar is None:
        return None
    array = np.empty((), dtype=object)
    array[()] = scalar
    return array


def _plain(value: Any) -> Any:
    """BigQuery's NUMERIC values (Decimal) as floats, in lists too."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _numeric_array(value: Any, dtype: np.dtype) -> np.ndarray | None:
    """A number or nested lists of numbers in `dtype`; None if a value has the wrong type or is ragged."""
    if isinstance(value, (str, bytes, dict)) or value is None:
        return None
    value = _plain(value)
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError):  # ragged nesting
        return None
    if raw.dtype.kind == "b":
        return raw.astype(dtype) if dtype.kind == "b" else None
    if raw.dtype == object and dtype.kind == "f" and all(type(item) is int for item in raw.ravel()):
        try:  # integers beyond 64 bits (CSV's, JSON's): a float input holds them, rounded as floats are
            raw = raw.astype(np.float64)
        except OverflowError:
            return None
    if raw.dtype.kind not in "iuf":
        return None
    if dtype.kind == "b":
        return None
    if dtype.kind in "iu":
        if raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw))):
            return None
        info = np.iinfo(dtype)
        # Floats compare against the first value past the range: float(2**63 - 1) is 2**63, which would wrap.
        if raw.size:
            too_big = raw.max() >= float(info.max) + 1 if raw.dtype.kind == "f" else raw.max() > info.max
            if too_big or raw.min() < info.min:
                return None
    with np.errstate(over="ignore"):
        converted = raw.astype(dtype)
    if dtype.kind == "f" and not np.all(np.isfinite(converted)):
        return None
    return converted


def convert(value: Any, spec: TensorSpec) -> np.ndarray | Rejection:
    """One field's value as the input `spec` takes it (without the batch dimension)."""
    if value is None:
        return Rejection(Reason.MISSING_FIELD, f"field '{spec.name}' is null")
    if spec.dtype == "string":
        array = _string_array(value)
        wanted = 'text, or {"b64": ...} for bytes'
    else:
        array = _numeric_array(value, np.dtype(spec.dtype))
        wanted = f"finite {spec.dtype} numbers" if spec.dtype != "bool" else "true or false"
    if array is None:
        return Rejection(Reason.WRONG_TYPE, f"field '{spec.name}': {_excerpt(value)} is not {wanted}")
    if len(array.shape) != len(spec.shape) or any(
        want is not None and got != want for got, want in zip(array.shape, spec.shape, strict=True)
    ):
        shown = tuple("?" if dim is None else dim for dim in spec.shape)
        return Rejection(Reason.WRONG_SHAPE, f"field '{spec.name}' has shape {array.shape}, the model takes {shown}")
    return array


def convert_key(value: Any, kind: str) -> Any | Rejection:
    """A record's key as the job's key kind takes it."""
    if kind == KEY_INT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return Rejection(Reason.BAD_KEY, f"key {_excerpt(value)} is not an integer")
        if isinstance(value, float) and not value.is_integer():
            return Rejection(Reason.BAD_KEY, f"key {_excerpt(value)} is not an integer")
        if not INT64_MIN <= value <= INT64_MAX:
            return Rejection(Reason.KEY_OUT_OF_RANGE, f"key {_excerpt(value)} does not fit in a 64-bit integer")
        return int(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection(Reason.BAD_KEY, "key is not UTF-8 text")
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return Rejection(Reason.BAD_KEY, f"key {_excerpt(value)} is not text or an integer")


def record_key(
    feeding: Feeding, source: SourceBatch, position: int, fields: dict[str, Any], what: str = "key field"
) -> Any:
    """The key of the record at `position` of `source`, from its fields or its position; a Rejection
    when a keyed job's record has no usable key (`what` names the missing thing in the message)."""
    if feeding.key_kind == KEY_POSITION:
        return source.position_of(position)
    value = fields.get(feeding.key_field)
    if feeding.key_kind == KEY_STR_OR_POSITION:
        return source.position_of(position) if value is None else convert_key(value, KEY_STR)
    if value is None:
        return Rejection(Reason.MISSING_KEY, f"no {what} '{feeding.key_field}'")
    return convert_key(value, feeding.key_kind)


def key_feed(keys: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The keys as the signature's key input takes them (text keys only to a tf.string input)."""
    if spec.dtype == "string":
        return np.array([str(key).encode() for key in keys], dtype=object)
    return keys.astype(spec.dtype)


class InstanceBuilder:
    """Collects the instances of one source batch, then stacks them into InstanceBatches."""

    def __init__(self, feeding: Feeding, source: SourceBatch):
        self._feeding = feeding
        self._source = source
        self._groups: dict[tuple[Any, ...], list[tuple[int, Any, dict[str, np.ndarray], dict[str, Any] | None]]] = {}
        self.rejections: list[tuple[int, Rejection]] = []

    def add(self, position: int, fields: dict[str, Any], as_instance: bool = False) -> None:
        """Adds the record at `position` of the source batch, or its rejection. `as_instance`: the
        fields are the inputs already (a JSON array for a one-input model), not a record's fields."""
        feeding = self._feeding
        key = record_key(feeding, self._source, position, fields)
        if isinstance(key, Rejection):
            self.rejections.append((position, key))
            return
        included = {name: fields.get(name) for name in feeding.included_fields} if feeding.included_fields else None
        if feeding.array_fields and not as_instance:
            missing = next((name for name in feeding.array_fields if fields.get(name) is None), None)
            if missing is not None:
                what = f"no field '{missing}'" if missing not in fields else f"field '{missing}' is null"
                self.rejections.append((position, Rejection(Reason.MISSING_FIELD, what)))  # as for named inputs
                return
            fields = {feeding.inputs[0].name: [fields[name] for name in feeding.array_fields]}
        values: dict[str, np.ndarray] = {}
        for spec in feeding.inputs:
            if spec.name not in fields:
                self.rejections.append((position, Rejection(Reason.MISSING_FIELD, f"no field '{spec.name}'")))
                return
            converted = convert(fields[spec.name], spec)
            if isinstance(converted, Rejection):
                self.rejections.append((position, converted))
                return
            values[spec.name] = converted
        shapes = tuple(array.shape for array in values.values())
        self._groups.setdefault(shapes, []).append((position, key, values, included))

    def reject(self, position: int, rejection: Rejection) -> None:
        self.rejections.append((position, rejection))

    def batches(self) -> list[InstanceBatch]:
        return [self._stack(members) for members in self._groups.values()]

    def _stack(self, members: Sequence[tuple[int, Any, dict[str, np.ndarray], dict[str, Any] | None]]) -> InstanceBatch:
        feeding = self._feeding
        keys = [key for _, key, _, _ in members]
        key_array = np.array(keys, dtype=np.int64) if feeding.key_kind == KEY_INT else np.array(keys, dtype=object)
        features = {
            spec.name: np.stack([values[spec.name] for _, _, values, _ in members]).astype(
                object if spec.dtype == "string" else spec.dtype, copy=False
            )
            for spec in feeding.inputs
        }
        if feeding.key_input is not None:
            features[feeding.key_input.name] = key_feed(key_array, feeding.key_input)
        included = [row or {} for _, _, _, row in members] if feeding.included_fields else None
        positions = np.fromiter((position for position, _, _, _ in members), dtype=np.int64, count=len(members))
        return InstanceBatch(key_array, features, self._source, positions, included)


def columnar_batch(
    feeding: Feeding,
    source: SourceBatch,
    columns: dict[str, np.ndarray],
    keys: np.ndarray | None,
    included: list[dict[str, Any]] | None = None,
) -> InstanceBatch | None:
    """An InstanceBatch straight from whole columns (a vectorised reader's output), every record
    kept; None when any value needs the per-record path to be accepted or rejected with a reason
    (a null, a non-finite number, a value of the wrong type or shape)."""
    count = len(source)
    features: dict[str, np.ndarray] = {}
    for spec in feeding.inputs:
        column = columns.get(spec.name)
        if column is None or len(column) != count:
            return None
        if spec.dtype == "string":
            if spec.shape or column.dtype != object or any(not isinstance(value, (str, bytes)) for value in column):
                return None
            features[spec.name] = column
            continue
        if column.dtype.kind not in "iufb" or column.shape[1:] != tuple(spec.shape) or None in spec.shape:
            return None
        converted = _numeric_array(column, np.dtype(spec.dtype))
        if converted is None:
            return None
        features[spec.name] = converted
    if feeding.key_kind == KEY_POSITION:
        key_array = np.array([source.position_of(index) for index in range(count)], dtype=object)
    elif keys is None or len(keys) != count:
        return None
    elif feeding.key_kind == KEY_INT:
        if keys.dtype.kind not in "iu":
            return None
        key_array = keys.astype(np.int64)
    else:
        if keys.dtype != object or any(not isinstance(key, str) for key in keys):
            return None
        key_array = keys
    if feeding.key_input is not None:
        features[feeding.key_input.name] = key_feed(key_array, feeding.key_input)
    return InstanceBatch(key_array, features, source, np.arange(count, dtype=np.int64), included)
