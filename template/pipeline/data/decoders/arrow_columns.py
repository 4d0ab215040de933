"""Vectorised decoding of JSON Lines and CSV with Arrow's readers: a whole batch parsed at once into
columns typed by the signature, the fast path for well-formed batches.

Whenever Arrow cannot vouch for every record of a batch — a value it cannot convert, a null, a
quote in CSV (Vertex AI's rule types quoted values as text, which Arrow cannot tell), a blank
line, a list of varying length — it returns None and the decoder takes the per-record path, which
accepts exactly what it accepts and names the reason for every rejection. A property test checks
that both paths give the same instances.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.decoders.csv_typing import typed
from pipeline.data.instances import KEY_INT, KEY_POSITION, Feeding, columnar_batch
from pipeline.model.signatures import TensorSpec

_BLOCK = 1 << 26  # one block per batch: batches are small


def _scalar_type(dtype: str) -> pa.DataType:
    if dtype == "string":
        return pa.string()
    if dtype == "bool":
        return pa.bool_()
    return pa.int64() if np.dtype(dtype).kind in "iu" else pa.float64()


def _arrow_type(spec: TensorSpec, lists: bool) -> pa.DataType | None:
    """The Arrow type a column is read as; None where only the per-record path decides the same way
    (booleans: CSV's rule has none; lists: CSV has none, JSON's deeper or variable ones are batched by shape)."""
    if spec.dtype == "bool":
        return None
    if len(spec.shape) == 0:
        return _scalar_type(spec.dtype)
    if lists and len(spec.shape) == 1 and spec.shape[0] is not None and spec.dtype != "string":
        return pa.list_(_scalar_type(spec.dtype))
    return None


def _key_type(feeding: Feeding) -> pa.DataType:
    return pa.int64() if feeding.key_kind == KEY_INT else pa.string()


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def column_values(array: pa.ChunkedArray | pa.Array, spec: TensorSpec) -> np.ndarray | None:
    """A whole Arrow column as the batch-major array of an input of `spec`'s shape, or None where a value
    needs the per-record path (a null; a list of another length, or of lists that differ in length).

    A list column fills a tensor input row-major, nested or flat: `fixed_size_list<float, 784>` or
    `list<float>` of 784 values each feeds a (28, 28, 1) input, as the sample's lines do. Dictionary
    columns are read as their values.
    """
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if array.null_count:
        return None
    if len(spec.shape) == 0:
        return None if _is_list(array.type) else array.to_numpy(zero_copy_only=False)
    size = spec.size
    if size is None or not _is_list(array.type):  # a lone value fills no tensor, as per record
        return None
    values = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    rows = len(values)
    while _is_list(values.type):
        if values.null_count:
            return None
        if not pa.types.is_fixed_size_list(values.type):
            lengths = values.value_lengths().to_numpy()
            if len(lengths) and lengths.min() != lengths.max():
                return None
        values = values.flatten()
    if values.null_count or len(values) != rows * size:
        return None
    return values.to_numpy(zero_copy_only=False).reshape(rows, *spec.shape)


def _untrimmed(array: pa.ChunkedArray) -> bool:
    """Text with whitespace around it: the per-record path trims unquoted CSV values."""
    return bool(pc.any(pc.not_equal(array, pc.utf8_trim_whitespace(array))).as_py())


def _instances(
    feeding: Feeding, batch: RecordBatch, table: pa.Table, included: list[dict[str, Any]] | None
) -> InstanceBatch | None:
    if table.num_rows != len(batch):
        return None
    columns = {}
    for spec in feeding.inputs:
        column = column_values(table[spec.name], spec) if spec.name in table.column_names else None
        if column is None or (spec.dtype == "string" and _untrimmed(table[spec.name])):
            return None
        columns[spec.name] = column
    keys = None
    if feeding.key_kind != KEY_POSITION:
        if feeding.key_field not in table.column_names or table[feeding.key_field].null_count:
            return None
        if table[feeding.key_field].type == pa.string() and _untrimmed(table[feeding.key_field]):
            return None
        keys = table[feeding.key_field].to_numpy(zero_copy_only=False)
    return columnar_batch(feeding, batch, columns, keys, included)


def _types(feeding: Feeding, lists: bool) -> dict[str, pa.DataType] | None:
    if feeding.array_fields:  # Vertex AI's array instances are built record by record
        return None
    types = {}
    for spec in feeding.inputs:
        arrow_type = _arrow_type(spec, lists)
        if arrow_type is None:
            return None
        types[spec.name] = arrow_type
    if feeding.key_kind != KEY_POSITION:
        types[feeding.key_field] = _key_type(feeding)
    return types


def csv_instances(feeding: Feeding, batch: RecordBatch) -> InstanceBatch | None:
    types = _types(feeding, lists=False)
    if types is None or batch.header is None or b'"' in batch.header or any(b'"' in line for line in batch.payloads):
        return None
    # Included fields are read as text and typed by the same rule as the per-record path.
    types.update({name: pa.string() for name in feeding.included_fields if name not in types})
    try:
        table = pa_csv.read_csv(
            io.BytesIO(batch.header + b"\n" + b"\n".join(batch.payloads)),
            read_options=pa_csv.ReadOptions(use_threads=False, block_size=_BLOCK),
            parse_options=pa_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, include_columns=list(types), include_missing_columns=True, null_values=[""]
            ),
        )
    except pa.ArrowException:
        return None
    included = None
    if feeding.included_fields:
        texts = {name: table[name].to_pylist() for name in feeding.included_fields}
        as_text = {spec.name for spec in feeding.inputs if spec.dtype == "string"}  # text inputs stay text

        def value(name: str, text: str | None) -> Any:
            if text is None:
                return None
            return text.strip() if name in as_text else typed(text.strip(), quoted=False)

        included = [{name: value(name, text[row]) for name, text in texts.items()} for row in range(table.num_rows)]
    return _instances(feeding, batch, table, included)


def json_instances(feeding: Feeding, batch: RecordBatch) -> InstanceBatch | None:
    types = _types(feeding, lists=True)
    if types is None or any(not line.strip() or not line.lstrip().startswith(b"{") for line in batch.payloads):
        return None
    try:
        table = pa_json.read_json(
            io.BytesIO(b"\n".join(batch.payloads)),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=_BLOCK),
            parse_options=pa_json.ParseOptions(explicit_schema=pa.schema(types), unexpected_field_behavior="ignore"),
        )
    except pa.ArrowException:
        return None
    included = None
    if feeding.included_fields:  # as the per-record path parses them: Arrow would type them per batch
        try:
            records = [orjson.loads(line) for line in batch.payloads]
        except orjson.JSONDecodeError:  # Arrow reads NaN and Infinity, which JSON (and orjson) does not have
            return None
        included = [{name: record.get(name) for name in feeding.included_fields} for record in records]
    return _instances(feeding, batch, table, included)
