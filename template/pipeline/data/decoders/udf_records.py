"""Records through a Python UDF before the model: a source batch turned into records (dicts of fields), the
UDF run on each, and what it returns fed to the model by field name, as table rows are.

A record is what its format holds: a JSON Lines object or a JSON message, a CSV row typed as the CSV decoder
types it (columns named like a text input stay text), a BigQuery or Avro row, a Parquet row, or a whole file
as `{"path": ..., "bytes": ...}`. The UDF returns a record, a list, tuple or generator of records (a record
split in several), or None (dropped on purpose: counted, not a dead letter). What it raises, or a value of
another type, is a `udf_error` dead letter of the record, naming the UDF's file, line and function. Over
Parquet and Avro rows, a list fills a tensor input row-major as their own decoder's does (`columns.filled`).

Every dead letter points at the source record (its origin, payload and position), also for a record the UDF
returned that does not fit the model. Where records are keyed by position, the records of one split are
`<position>#0`, `<position>#1`, ...: distinct keys.

Where every value fits (the usual case), the returned records are fed as whole columns (`columnar_batch`);
otherwise record by record (`InstanceBuilder`), which names the reason for each one refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from pipeline.data.batches import ColumnBatch, InstanceBatch, RecordBatch, RowBatch, SourceBatch
from pipeline.data.dead_letters import Reason, Rejection, utc_now
from pipeline.data.decoders.base import Decoded
from pipeline.data.decoders.columns import filled_fields, tensor_inputs
from pipeline.data.decoders.csv_lines import csv_record
from pipeline.data.decoders.csv_typing import header_columns
from pipeline.data.decoders.json_lines import parse_json_line
from pipeline.data.formats import COLUMNAR_FORMATS, CSV, FILES, KEY_VALUES, TFRECORD
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding, InstanceBuilder, columnar_batch
from pipeline.data.udf import UdfCode, UdfLoadError, describe, excerpt, function_of, materialized

FIELDLESS_FORMATS = (KEY_VALUES, TFRECORD)  # records a UDF cannot be given as fields
RETURNS = "it must return a dict, a list, tuple or generator of dicts, or None"
_NUMBERS = frozenset((int, float))


@dataclass(frozen=True, kw_only=True)
class UdfRows(RowBatch):
    """The records a UDF returned for a source batch, each pointing at the source record it came from:
    `sources[i]` is its index in `source`, `parts[i]` its index in the list the UDF returned (-1 for one
    record returned alone)."""

    source: SourceBatch
    sources: tuple[int, ...]
    parts: tuple[int, ...]

    def origin_of(self, index: int) -> str:
        return self.source.origin_of(self.sources[index])

    def payload_of(self, index: int) -> bytes:
        return self.source.payload_of(self.sources[index])

    def position_of(self, index: int) -> str:
        part = self.parts[index]
        position = self.source.position_of(self.sources[index])
        return position if part < 0 else f"{position}#{part}"

    def locate(self, index: int) -> str | None:
        return self.source.locate(self.sources[index])


def _json_records(batch: RecordBatch) -> tuple[list[int], list[Any], list[tuple[int, Rejection]]]:
    try:  # the usual batch: every line JSON, parsed without a call per line
        values = [orjson.loads(payload) for payload in batch.payloads]
        return list(range(len(values))), values, []
    except orjson.JSONDecodeError:
        pass
    return _parsed(batch.payloads, parse_json_line)


def _parsed(
    payloads: list[bytes], parse: Callable[[bytes], Any]
) -> tuple[list[int], list[Any], list[tuple[int, Rejection]]]:
    """(positions, values, rejections) of payloads parsed one by one: what `parse` rejects, at its index."""
    positions, values, rejections = [], [], []
    for position, payload in enumerate(payloads):
        value = parse(payload)
        if isinstance(value, Rejection):
            rejections.append((position, value))
        else:
            positions.append(position)
            values.append(value)
    return positions, values, rejections


def _copied(value: Any) -> Any:
    """A row copied as deep as its lists and dicts nest (an Avro record's arrays and records, a table's
    REPEATED and RECORD columns); its other values are immutable."""
    if isinstance(value, dict):
        return {name: _copied(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value] if any(isinstance(item, (list, dict)) for item in value) else value[:]
    return value


def source_records(
    batch: SourceBatch, record_format: str, text_inputs: frozenset[str] = frozenset()
) -> tuple[list[int], list[dict[str, Any]], list[tuple[int, Rejection]]]:
    """(positions, records, rejections) of a source batch: each record a dict of its fields, at its index
    in the batch; the rejections of what is no record (a line that is not JSON, a JSON array)."""
    if isinstance(batch, RowBatch):  # copies: what the UDF changes in place leaves the dead letters' payload
        return list(range(len(batch.rows))), [_copied(row) for row in batch.rows], []
    if isinstance(batch, ColumnBatch):  # a Parquet slice, its rows as dicts
        rows = batch.rows()
        return list(range(len(rows))), rows, []
    if record_format == FILES:
        files = [{"path": batch.position_of(index), "bytes": payload} for index, payload in enumerate(batch.payloads)]
        return list(range(len(files))), files, []
    if record_format == CSV:
        columns = header_columns(batch.header)
        return _parsed(batch.payloads, lambda payload: csv_record(payload, columns, text_inputs))
    positions, values, rejections = _json_records(batch)
    if all(type(value) is dict for value in values):
        return positions, values, rejections
    kept_positions, records = [], []
    for position, value in zip(positions, values, strict=True):
        if isinstance(value, dict):
            kept_positions.append(position)
            records.append(value)
        else:
            message = f"a UDF takes JSON objects; this line is a JSON {type(value).__name__}"
            rejections.append((position, Rejection(Reason.WRONG_TYPE, message)))
    return kept_positions, records, sorted(rejections)


def _values(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [row.get(name) for row in rows]


def _scalar_column(values: list[Any], dtype: str) -> np.ndarray | None:
    """A whole column of one scalar input, where every value is of a type the per-record path takes the
    same way; None otherwise (a bool among numbers, a list, a null: the per-record path says why)."""
    types = set(map(type, values))
    if dtype == "string":
        return np.array(values, dtype=object) if types <= {str, bytes} else None
    if dtype == "bool":
        return np.array(values, dtype=bool) if types == {bool} else None
    return np.asarray(values) if types <= _NUMBERS else None


def _columnar(feeding: Feeding, rows: UdfRows) -> InstanceBatch | None:
    """The returned records as whole columns, every one kept; None where any needs the per-record path."""
    if feeding.array_fields or any(spec.shape for spec in feeding.inputs):
        return None
    columns = {}
    for spec in feeding.inputs:
        column = _scalar_column(_values(rows.rows, spec.name), spec.dtype)
        if column is None:
            return None
        columns[spec.name] = column
    keys = None
    if feeding.key_kind != KEY_POSITION:
        values = _values(rows.rows, feeding.key_field)
        if set(map(type, values)) != ({int} if feeding.key_kind == KEY_INT else {str}):
            return None
        keys = np.asarray(values) if feeding.key_kind == KEY_INT else np.array(values, dtype=object)
    included = None
    if feeding.included_fields:
        included = [{name: row.get(name) for name in feeding.included_fields} for row in rows.rows]
    return columnar_batch(feeding, rows, columns, keys, included)


class UdfRecordsDecoder:
    """Runs the UDF `code.before` on each record of a batch and feeds what it returns to the model by name."""

    def __init__(self, record_format: str, feeding: Feeding, code: UdfCode):
        if record_format in FIELDLESS_FORMATS:
            raise ValueError(f"{record_format} records have no fields to give a UDF")
        if code.before is None:
            raise ValueError("no UDF runs before the model")
        self._format = record_format
        self._feeding = feeding
        self._code = code
        self._name: str = code.before
        self._text_inputs = frozenset(spec.name for spec in feeding.inputs if spec.dtype == "string")
        # Over Parquet and Avro rows, a list fills a tensor input row-major as their plain decoder's does.
        self._tensors = tensor_inputs(feeding) if record_format in COLUMNAR_FORMATS else ()

    def decode(self, batch: SourceBatch) -> Decoded:
        timestamp = utc_now()
        try:
            function = function_of(self._code, self._name)
        except UdfLoadError as error:  # the same file loaded at launch: only a worker's own trouble gets here
            rejection = Rejection(Reason.UDF_ERROR, str(error))
            letters = [batch.dead_letter(index, rejection, error.stacktrace, timestamp) for index in range(len(batch))]
            return Decoded([], letters)
        positions, records, rejections = source_records(batch, self._format, self._text_inputs)
        letters = [batch.dead_letter(position, rejection, timestamp=timestamp) for position, rejection in rejections]
        outputs: list[dict[str, Any]] = []
        sources: list[int] = []
        parts: list[int] = []
        dropped = added = 0
        for position, record in zip(positions, records, strict=True):
            try:
                result = materialized(function(record))  # a generator's body runs here: what it raises is caught
            except (Exception, SystemExit) as error:
                failure = describe(error, self._code.path, self._name)
                rejection = Rejection(Reason.UDF_ERROR, failure.message)
                letters.append(batch.dead_letter(position, rejection, failure.stacktrace, timestamp))
                continue
            if type(result) is dict:
                outputs.append(result)
                sources.append(position)
                parts.append(-1)
            elif result is None or (isinstance(result, (list, tuple)) and not result):
                dropped += 1
            elif isinstance(result, (list, tuple)) and all(isinstance(item, dict) for item in result):
                outputs.extend(result)
                sources.extend([position] * len(result))
                parts.extend(range(len(result)))
                added += len(result) - 1
            elif isinstance(result, dict):  # a dict's subclass (OrderedDict, ...)
                outputs.append(dict(result))
                sources.append(position)
                parts.append(-1)
            else:
                letters.append(batch.dead_letter(position, self._wrong_return(result), timestamp=timestamp))
        if not outputs:
            return Decoded([], letters, dropped, added)
        rows = UdfRows(getattr(batch, "origin", ""), outputs, source=batch, sources=tuple(sources), parts=tuple(parts))
        columnar = _columnar(self._feeding, rows)
        if columnar is not None:
            return Decoded([columnar], letters, dropped, added)
        builder = InstanceBuilder(self._feeding, rows)
        for index, output in enumerate(outputs):
            builder.add(index, filled_fields(output, self._tensors) if self._tensors else output)
        for index, rejection in builder.rejections:
            message = f"in what {self._name}() returned: {rejection.message}"
            letters.append(rows.dead_letter(index, Rejection(rejection.reason, message), timestamp=timestamp))
        return Decoded(builder.batches(), letters, dropped, added)

    def _wrong_return(self, result: Any) -> Rejection:
        if isinstance(result, (list, tuple)):
            bad = next(item for item in result if not isinstance(item, dict))
            what = f"a list holding {excerpt(bad)}"
        else:
            what = excerpt(result)
        return Rejection(Reason.UDF_ERROR, f"{self._name}() returned {what}: {RETURNS}")
