"""Launch-time checks of records against the model: the first records of the input, read and decoded
exactly as the job will, decide how records are keyed and fed, and any mismatch is one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.data.batches import RecordBatch, RowBatch, SourceBatch
from pipeline.data.dead_letters import Rejection
from pipeline.data.decoders import BIGQUERY_KEY_VALUES, BIGQUERY_ROWS, COLUMNS_KEY_VALUES, decoder_for
from pipeline.data.decoders.csv_typing import header_columns, split_csv_line, typed
from pipeline.data.decoders.json_lines import parse_json_line
from pipeline.data.decoders.tfrecords import example_fields
from pipeline.data.formats import CSV, FILES, JSONL, KEY_VALUES, TFRECORD
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, KEY_STR_OR_POSITION, Feeding
from pipeline.data.rows import RowLayout, included_type
from pipeline.data.seed_lines import SEED_IMAGE_COLUMN, row_to_line, value_count
from pipeline.errors import LaunchError, ModelError
from pipeline.launch.feeding import (
    bytes_feeding,
    check_fields,
    key_kind_of,
    key_values_feeding,
    named_feeding,
    read_columns,
    record_columns,
    row_layout,
    table_columns,
    vertex_shape,
)
from pipeline.launch.file_checks import first_record_width
from pipeline.launch.instance_options import (
    AS_NAMED,
    InstanceOptions,
    check_vertex_key,
    keys_by_field,
    refuse_for,
    shape_feeding,
    with_default_type,
)
from pipeline.launch.table_checks import TableInfo
from pipeline.model.signatures import ModelSignature, TensorSpec


@dataclass(frozen=True)
class RecordPlan:
    """How the job decodes, feeds and writes records."""

    decoding: str  # a decoder name: a file format, or BIGQUERY_ROWS / BIGQUERY_KEY_VALUES
    feeding: Feeding
    rows: RowLayout
    columns: tuple[str, ...] | None = None  # the table columns to read


def _first_fields(record_format: str, batch: RecordBatch | None, feeding_names: tuple[str, ...]) -> dict | None:
    """The first decodable record's fields (as the decoder will see them), for keys and included fields."""
    if batch is None:
        return None
    if record_format == JSONL:
        for payload in batch.payloads:
            value = parse_json_line(payload)
            if isinstance(value, dict):
                return value
            if isinstance(value, list):
                return {}
        return None
    if record_format == CSV:
        columns = header_columns(batch.header) or []
        for payload in batch.payloads:
            cells = split_csv_line(payload.decode("utf-8", "replace").strip("\r\n"))
            if cells and len(cells) == len(columns):
                return {name: typed(value, quoted) for name, (value, quoted) in zip(columns, cells, strict=True)}
        return None
    if record_format == TFRECORD:
        example = example_fields(batch.payloads[0], feeding_names)
        return None if isinstance(example, Rejection) else example
    return None


def _check_width(signature: ModelSignature, feeding: Feeding, width: int | None, input_flag: str) -> None:
    image = feeding.inputs[0]
    if width is not None and width != image.size:
        raise ModelError(
            f"--model={signature.path}: takes {image.size} values per record (input shape {image.shape}), but "
            f"the first record of {input_flag} has {width}; check that the model and the data belong together"
        )


def _check_first_records(feeding: Feeding, record_format: str, batch: SourceBatch | None, what: str) -> None:
    """The first records decode as the job will decode them; if none does, the first reason is the error."""
    if batch is None or not len(batch):
        return
    decoded = decoder_for(record_format, feeding).decode(batch)
    if not decoded.instances and decoded.dead_letters:
        letter = decoded.dead_letters[0]
        raise LaunchError(f"{what}: the first records do not fit the model: {letter.reason}: {letter.message}")


def plan_for_files(
    signature: ModelSignature,
    record_format: str,
    first: SourceBatch | None,
    key_field: str,
    included: tuple[str, ...],
    input_flag: str,
    options: InstanceOptions = AS_NAMED,
) -> RecordPlan:
    """How files of `record_format` feed the model, from its signature and the first records."""
    first = first if isinstance(first, RecordBatch) else None  # the formats of records read as bytes
    try:
        if record_format in (KEY_VALUES, FILES) and included:
            raise ModelError(f"--included_fields: {record_format} records have no fields to include")
        if record_format in (KEY_VALUES, FILES, TFRECORD):
            refuse_for(options, f"{record_format} records")
        if record_format == KEY_VALUES:
            feeding = key_values_feeding(signature, key_field)
            _check_width(signature, feeding, first_record_width(first), input_flag)
            vertex = vertex_shape(feeding, options, KEY_VALUES)
            return RecordPlan(KEY_VALUES, feeding, row_layout(signature, feeding, {}, options, vertex))
        if record_format == FILES:
            check_vertex_key(options, key_field, False, "a whole file")
            feeding = bytes_feeding(signature, FILES, key_field, KEY_POSITION)
            return RecordPlan(
                FILES, feeding, row_layout(signature, feeding, {}, options, vertex_shape(feeding, options, FILES))
            )
        fields = _first_fields(record_format, first, (key_field, *included)) or {}
        key_kind = key_kind_of(fields.get(key_field)) if keys_by_field(options, signature, key_field) else KEY_POSITION
        header = header_columns(first.header) if first is not None and record_format == CSV else None
        if first is not None and fields:
            check_vertex_key(options, key_field, key_field in fields, f"{input_flag}={first.origin}: the first record")
        if record_format == TFRECORD:
            feeding = bytes_feeding(signature, TFRECORD, key_field, key_kind, included)
        else:
            record_fields = header if header is not None else (list(fields) if fields else None)
            named = named_feeding(signature, key_field, key_kind, included)
            options = with_default_type(options, record_format == CSV)
            feeding = shape_feeding(named, options, signature, record_fields, ordered=header is not None)
            if fields and first is not None and record_format == CSV:
                header = header or []
                check_fields(feeding, header, f"{input_flag}={first.origin}: the header")
                absent = [name for name in included if name not in header]
                if absent:
                    raise ModelError(
                        f"--included_fields: the header of {first.origin} has no column {', '.join(absent)}"
                    )
            elif fields and first is not None:
                check_fields(feeding, list(fields), f"{input_flag}={first.origin}: the first record")
        types = {name: included_type(fields.get(name)) for name in feeding.included_fields}
        seen = record_columns(fields, feeding, record_format == JSONL) if record_format in (CSV, JSONL) else ()
        vertex = vertex_shape(feeding, options, record_format, tuple(header or ()), source_columns=seen)
        plan = RecordPlan(record_format, feeding, row_layout(signature, feeding, types, options, vertex))
    except ModelError as error:
        raise LaunchError(str(error)) from None
    _check_first_records(plan.feeding, record_format, first, input_flag)
    return plan


_KEY_KINDS = {"INTEGER": KEY_INT, "INT64": KEY_INT, "STRING": KEY_STR}
_INCLUDED_TYPES = {"INTEGER": "INTEGER", "INT64": "INTEGER", "FLOAT": "FLOAT", "FLOAT64": "FLOAT", "BOOLEAN": "BOOLEAN"}
_INCLUDED_TYPES |= {"BOOL": "BOOLEAN", "STRING": "STRING", "BYTES": "BYTES", "NUMERIC": "FLOAT", "BIGNUMERIC": "FLOAT"}


def _seed_table(table: TableInfo, key_field: str) -> bool:
    """The 2017 sample's table: an integer key and `image STRING` holding v0,v1,..."""
    return (
        table.columns.get(SEED_IMAGE_COLUMN) == "STRING" and _KEY_KINDS.get(table.columns.get(key_field, "")) == KEY_INT
    )


def _seed_plan(
    signature: ModelSignature,
    table: TableInfo,
    key_field: str,
    included: tuple[str, ...],
    options: InstanceOptions,
    decoding: str,
) -> RecordPlan | None:
    """The 2017 sample's key and image columns read as its lines, where the model takes those; else None."""
    if not _seed_table(table, key_field) or options.given:
        return None
    try:
        feeding = key_values_feeding(signature, key_field)
    except ModelError:
        return None
    types = {name: _INCLUDED_TYPES.get(table.columns[name], "STRING") for name in included}
    feeding = Feeding(feeding.inputs, key_field, KEY_INT, feeding.key_input, included)
    plan = RecordPlan(
        decoding,
        feeding,
        row_layout(signature, feeding, types, options, vertex_shape(feeding, options, KEY_VALUES)),
        tuple(dict.fromkeys((key_field, SEED_IMAGE_COLUMN, *included))),
    )
    line = row_to_line(table.first_row, key_field) if table.first_row else None
    width = None if line is None or isinstance(line, Rejection) else value_count(line)
    _check_width(signature, feeding, width, "--input")
    return plan


def plan_for_table(
    signature: ModelSignature,
    table: TableInfo,
    key_field: str,
    included: tuple[str, ...],
    what: str,
    options: InstanceOptions = AS_NAMED,
) -> RecordPlan:
    """How table rows feed the model: the 2017 sample's key and image columns as its lines, or
    every input from the column of its name."""
    try:
        missing_included = [name for name in included if name not in table.columns]
        if missing_included:
            raise ModelError(f"--included_fields: {what} has no column {', '.join(missing_included)}")
        seed = _seed_plan(signature, table, key_field, included, options, BIGQUERY_KEY_VALUES)
        if seed is not None:
            return seed
        keyed = keys_by_field(options, signature, key_field)  # by position where Vertex AI has no key field
        if keyed and key_field not in table.columns:
            raise ModelError(
                f"{what} has no column '{key_field}' to key the predictions; set --key_field to the column that "
                f"identifies a row (it has {', '.join(table.columns)})"
            )
        key_kind = _KEY_KINDS.get(table.columns[key_field]) if keyed else KEY_POSITION
        if key_kind is None:
            raise ModelError(
                f"{what}: key column '{key_field}' is {table.columns[key_field]}; it must be INTEGER or STRING"
            )
        options = with_default_type(options, True)
        feeding = shape_feeding(
            named_feeding(signature, key_field, key_kind, included), options, signature, list(table.columns)
        )
        check_fields(feeding, list(table.columns), what)
        types = {name: _INCLUDED_TYPES.get(table.columns[name], "STRING") for name in feeding.included_fields}
        key = (key_field,) if keyed else ()
        vertex = vertex_shape(feeding, options, BIGQUERY_ROWS, source_columns=table_columns(table.columns))
        rows = row_layout(signature, feeding, types, options, vertex)
        read = read_columns(rows, (*key, *feeding.field_names, *feeding.included_fields), table.columns)
        plan = RecordPlan(BIGQUERY_ROWS, feeding, rows, read)
    except ModelError as error:
        raise LaunchError(str(error)) from None
    if table.first_row is not None:
        _check_first_records(plan.feeding, BIGQUERY_ROWS, RowBatch(what, [table.first_row]), what)
    return plan


_NUMBER_TYPES = ("INTEGER", "FLOAT", "NUMERIC")
_UNCHECKED_TYPES = ("UNION",)  # an Avro union of several types: each value is judged on its own


def _takes(spec: TensorSpec, column_type: str, scalar: bool = False) -> bool:
    """Whether an input can take a column's values: text from STRING or BYTES, numbers from numbers, a
    tensor from an ARRAY (nested or flat) of them."""
    leaf, depth = column_type, 0
    while leaf.startswith("ARRAY<") and leaf.endswith(">"):
        leaf, depth = leaf[len("ARRAY<") : -1], depth + 1
    if leaf in _UNCHECKED_TYPES:
        return True
    if (depth == 0) != (scalar or not spec.shape):
        return False
    if spec.dtype == "string":
        return leaf in ("STRING", "BYTES")
    return leaf == "BOOLEAN" if spec.dtype == "bool" else leaf in _NUMBER_TYPES


def _check_types(feeding: Feeding, columns: dict[str, str], what: str) -> None:
    """Every column that feeds the model is of a type its input takes (a type no value can be cast from is
    one line, not a dead letter per row)."""
    fed = [(name, feeding.inputs[0], True) for name in feeding.array_fields] or [
        (spec.name, spec, False) for spec in feeding.inputs
    ]
    for name, spec, scalar in fed:
        if name in columns and not _takes(spec, columns[name], scalar):
            takes = f"{spec.dtype} {(None, *spec.shape)}"
            raise ModelError(
                f"{what}: column '{name}' is {columns[name]}, which input '{spec.name}' ({takes}) cannot take"
            )


def plan_for_columns(
    signature: ModelSignature,
    record_format: str,
    table: TableInfo,
    first: SourceBatch | None,
    key_field: str,
    included: tuple[str, ...],
    what: str,
    options: InstanceOptions = AS_NAMED,
) -> RecordPlan:
    """How the columns of Parquet files (or the fields of Avro files) feed the model, as a table's do: by
    name, the key kind from the key column's type (rows keyed by `<file>:<row>` where there is none), each
    column the model needs present and of a type its input takes, and the first rows decoded as the job
    will decode them."""
    try:
        missing_included = [name for name in included if name not in table.columns]
        if missing_included:
            raise ModelError(f"--included_fields: {what} has no column {', '.join(missing_included)}")
        plan = _seed_plan(signature, table, key_field, included, options, COLUMNS_KEY_VALUES)
        if plan is None:
            keyed = key_field in table.columns and keys_by_field(options, signature, key_field)
            check_vertex_key(options, key_field, key_field in table.columns, what)  # Vertex AI's keyField
            key_kind = _KEY_KINDS.get(table.columns[key_field]) if keyed else KEY_POSITION
            if key_kind is None:
                raise ModelError(
                    f"{what}: key column '{key_field}' is {table.columns[key_field]}; it must be INTEGER or STRING "
                    "(or set --key_field to a column that is)"
                )
            feeding = shape_feeding(
                named_feeding(signature, key_field, key_kind, included), options, signature, list(table.columns)
            )
            check_fields(feeding, list(table.columns), what)
            _check_types(feeding, table.columns, what)
            types = {
                name: _INCLUDED_TYPES.get(table.columns.get(name, ""), "STRING") for name in feeding.included_fields
            }
            key = () if key_kind == KEY_POSITION else (key_field,)
            vertex = vertex_shape(feeding, options, record_format, source_columns=table_columns(table.columns))
            rows = row_layout(signature, feeding, types, options, vertex)
            read = read_columns(rows, (*key, *feeding.field_names, *feeding.included_fields), table.columns)
            plan = RecordPlan(record_format, feeding, rows, read)
    except ModelError as error:
        raise LaunchError(str(error)) from None
    _check_first_records(plan.feeding, plan.decoding, first, what)
    return plan


def plan_for_messages(
    signature: ModelSignature,
    record_format: str,
    key_field: str,
    included: tuple[str, ...],
    options: InstanceOptions = AS_NAMED,
) -> RecordPlan:
    """How Pub/Sub messages feed the model: no record can be read at launch (a pull would take it from
    the job), so keying follows the format alone. A key_values line keeps its integer key; a JSON
    object its `key_field` as text where it has one, else its message id; bytes their message id.
    Included fields are text columns in BigQuery, their type unseen at launch."""
    try:
        if record_format in (KEY_VALUES, FILES) and included:
            raise ModelError(f"--included_fields: {record_format} messages have no fields to include")
        if record_format in (KEY_VALUES, FILES):
            refuse_for(options, f"{record_format} messages")
        if record_format == KEY_VALUES:
            feeding = key_values_feeding(signature, key_field)
        elif record_format == FILES:
            check_vertex_key(options, key_field, False, "a message body")
            feeding = bytes_feeding(signature, FILES, key_field, KEY_POSITION)
        else:
            key_kind = KEY_STR_OR_POSITION if keys_by_field(options, signature, key_field) else KEY_POSITION
            feeding = shape_feeding(named_feeding(signature, key_field, key_kind, included), options, signature, None)
        vertex = vertex_shape(feeding, options, record_format, from_messages=True)
        return RecordPlan(record_format, feeding, row_layout(signature, feeding, {}, options, vertex))
    except ModelError as error:
        raise LaunchError(str(error)) from None
