"""Parquet and Avro rows, their columns fed to the signature's inputs by name, as a table's are.

A Parquet batch (ColumnBatch) is decoded straight from its Arrow columns: one array per input, the
keys and the included fields taken a column at a time, no per-record object made. Whenever a value
needs a reason — a null, a column the file lacks, a type or length that does not fit — the whole batch
takes the per-record path instead (`InstanceBuilder`, as table rows do), which accepts exactly what it
accepts and names the reason, and the file's row, of every rejection. Avro rows (RowBatch) take the
per-record path.

One rule fills a tensor input on both paths (`column_values`, `filled`), and for what a UDF returns over
Parquet or Avro rows: a list, flat or nested at any depth, whose numbers are as many as the input holds
fills it row-major — 784 numbers, or 28 lists of 28, feed a (28, 28, 1) input. A value that is no list
(a lone number for a (1,) input) or holds another count is refused (`wrong_shape`), as for a table's rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.data.batches import ColumnBatch, InstanceBatch, RowBatch
from pipeline.data.decoders.arrow_columns import column_values
from pipeline.data.decoders.base import Decoded, dead_letters
from pipeline.data.decoders.key_values import KeyValuesRowsDecoder
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding, InstanceBuilder, columnar_batch
from pipeline.data.seed_lines import INT64_MAX
from pipeline.model.signatures import TensorSpec


def _keys(feeding: Feeding, table: pa.Table) -> np.ndarray | None:
    """The key column as the job's keys, or None where a key needs the per-record path."""
    if feeding.key_field not in table.column_names:
        return None
    column = table[feeding.key_field]
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if column.null_count:
        return None
    keys = column.to_numpy(zero_copy_only=False)
    if feeding.key_kind == KEY_INT and keys.dtype.kind == "u" and len(keys) and keys.max() > INT64_MAX:
        return None
    return keys


def _array_instance(feeding: Feeding, table: pa.Table) -> dict[str, np.ndarray] | None:
    """Vertex AI's array instances: the fields' columns, in order, side by side as the one input."""
    (spec,) = feeding.inputs
    columns = []
    for name in feeding.array_fields:
        if name not in table.column_names:
            return None
        column = column_values(table[name], TensorSpec(name, spec.dtype, ()))
        if column is None or column.dtype.kind not in "iufb":
            return None
        columns.append(column)
    return {spec.name: np.stack(columns, axis=1)}


def _included(feeding: Feeding, table: pa.Table) -> list[dict[str, Any]] | None:
    if not feeding.included_fields:
        return None
    present = [name for name in dict.fromkeys(feeding.included_fields) if name in table.column_names]
    rows = table.select(present).to_pylist()
    absent = {name: None for name in feeding.included_fields if name not in table.column_names}
    return [{**absent, **row} for row in rows] if absent else rows


def table_instances(feeding: Feeding, batch: ColumnBatch) -> InstanceBatch | None:
    """Every row of the batch as instances, a column at a time; None where any row needs a reason."""
    table = batch.table
    if feeding.array_fields:
        columns = _array_instance(feeding, table)
        if columns is None:
            return None
    else:
        columns = {}
        for spec in feeding.inputs:
            column = column_values(table[spec.name], spec) if spec.name in table.column_names else None
            if column is None:
                return None
            columns[spec.name] = column
    keys = None
    if feeding.key_kind != KEY_POSITION:
        keys = _keys(feeding, table)
        if keys is None:
            return None
    return columnar_batch(feeding, batch, columns, keys, _included(feeding, table))


def filled(value: Any, spec: TensorSpec) -> Any:
    """A list (flat or nested, not ragged; or a NumPy array a UDF made) of exactly as many values as a tensor
    input of known shape holds, in that input's shape, row-major; any other value as it is, for `convert` to
    take or refuse with a reason. The per-record twin of `column_values`: both paths feed the same instances."""
    if not isinstance(value, (list, np.ndarray)) or not spec.shape or spec.size is None or spec.dtype == "string":
        return value
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged
        return value
    shape = tuple(dim or 0 for dim in spec.shape)  # every dimension known: `size` says so
    if array.size != spec.size or array.shape == shape:
        return value
    shaped = array.reshape(shape)
    return shaped if shaped.dtype.kind in "iufb" else shaped.tolist()  # Decimals, nulls, text: `convert` decides


def tensor_inputs(feeding: Feeding) -> tuple[TensorSpec, ...]:
    """The inputs `filled` may reshape a value for (none for Vertex AI's array instances)."""
    if feeding.array_fields:
        return ()
    return tuple(spec for spec in feeding.inputs if spec.shape and spec.size is not None and spec.dtype != "string")


def filled_fields(row: dict[str, Any], tensors: tuple[TensorSpec, ...]) -> dict[str, Any]:
    """A row with each tensor input's value `filled`; the row itself where none changes."""
    shaped = {spec.name: filled(row[spec.name], spec) for spec in tensors if spec.name in row}
    return {**row, **shaped} if shaped else row


class ColumnsDecoder:
    """ColumnBatches (Parquet) by their columns where every row fits, else row by row; RowBatches (Avro) row
    by row. Either way each column feeds the input of its name."""

    def __init__(self, feeding: Feeding):
        self._feeding = feeding
        self._tensors = tensor_inputs(feeding)

    def decode(self, batch: ColumnBatch | RowBatch) -> Decoded:
        if isinstance(batch, ColumnBatch):
            fast = table_instances(self._feeding, batch)
            if fast is not None:
                return Decoded([fast])
            rows = batch.rows()
        else:
            rows = batch.rows
        builder = InstanceBuilder(self._feeding, batch)
        for position, row in enumerate(rows):
            builder.add(position, filled_fields(row, self._tensors))
        return Decoded(builder.batches(), dead_letters(batch, builder.rejections))


def as_rows(batch: ColumnBatch | RowBatch) -> RowBatch:
    """A batch's rows as a RowBatch that finds and keys them the same way (`<file>:<row>`, key=value)."""
    if isinstance(batch, RowBatch):
        return batch
    return RowBatch(batch.origin, batch.rows(), batch.key_column, batch.start)


class ColumnsKeyValuesDecoder:
    """The 2017 sample's `key INTEGER, image STRING` columns in a Parquet or Avro file, as its lines."""

    def __init__(self, feeding: Feeding):
        self._rows = KeyValuesRowsDecoder(feeding)

    def decode(self, batch: ColumnBatch | RowBatch) -> Decoded:
        return self._rows.decode(as_rows(batch))
