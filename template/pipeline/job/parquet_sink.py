"""Predictions as Parquet files (`--output_format=parquet`): `<prefix>-SSSSS-of-NNNNN.parquet`, snappy, with
the columns of the BigQuery table the same job would write (`RowLayout.schema()`), typed as BigQuery types
them, so that a lake reads the same columns whichever output it is given.

Rows come one by one from `FormatRows` (BigQuery rows: BYTES as base64, which is written here as the raw
bytes); they are turned into Arrow a few thousand at a time with pyarrow, and a bundle's rows go to its
file as row groups of up to ROW_GROUP_BYTES, not one per model batch. Beam's `WriteToParquetBatched`
writes the files. A row Arrow cannot hold (an integer beyond int64, a null in a REQUIRED column) is an
`output_rejected` dead letter holding the row, never a failed job.
"""

from __future__ import annotations

import base64
import json
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.transforms.window import GlobalWindows

from pipeline.config import PARQUET_SUFFIX
from pipeline.data.dead_letters import DeadLetter, Reason, utc_now
from pipeline.job import metrics, progress
from pipeline.job.tags import DEAD_LETTERS

_ARROW_TYPES = {
    "INTEGER": pa.int64(),
    "FLOAT": pa.float64(),
    "STRING": pa.string(),
    "BOOLEAN": pa.bool_(),
    "BYTES": pa.binary(),
}
CODEC = "snappy"  # what Parquet's writers use by default, and BigQuery, Spark and DuckDB read
ROWS_PER_BATCH = 4096  # rows turned into Arrow at a time
ROW_GROUP_BYTES = 64 * 1024 * 1024  # of Arrow data per row group (Beam's WriteToParquet default)


def arrow_schema(schema: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a BigQuery schema: INTEGER int64, FLOAT float64, STRING string, BOOLEAN bool,
    BYTES binary; REPEATED a list of non-null values, REQUIRED not null, NULLABLE nullable."""
    fields = []
    for entry in schema["fields"]:
        value_type = _ARROW_TYPES.get(entry["type"])
        if value_type is None:
            raise ValueError(f"column {entry['name']}: no Parquet type for BigQuery type {entry['type']}")
        mode = entry.get("mode", "NULLABLE")
        if mode == "REPEATED":
            fields.append(pa.field(entry["name"], pa.list_(pa.field("element", value_type, nullable=False)), False))
        else:
            fields.append(pa.field(entry["name"], value_type, nullable=mode != "REQUIRED"))
    return pa.schema(fields)


def _binary_columns(schema: pa.Schema) -> tuple[str, ...]:
    """The columns that hold bytes (or lists of bytes): their rows carry base64, for BigQuery."""
    return tuple(
        field.name
        for field in schema
        if field.type == pa.binary() or (pa.types.is_list(field.type) and field.type.value_type == pa.binary())
    )


def _raw(value: Any) -> Any:
    """A BYTES value as its row carries it (base64 text, or a list of them) as the bytes themselves."""
    if isinstance(value, str):
        return base64.b64decode(value, validate=True)
    if isinstance(value, list):
        return [_raw(item) for item in value]
    return value


def _with_raw_bytes(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any] | str:
    """The row with its BYTES columns' base64 decoded; why not, where one is not base64 (a UDF's doing)."""
    decoded = dict(row)
    for name in columns:
        try:
            decoded[name] = _raw(row.get(name))
        except ValueError:  # binascii.Error
            return f"column {name}: a BYTES value that is not base64"
    return decoded


def _null_rows(table: pa.Table) -> dict[int, str]:
    """The rows holding a null where the schema allows none (a REQUIRED column, a REPEATED column's values),
    each with the first such column: Parquet's writer would refuse the whole file for one."""
    bad: dict[int, str] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        rows: list[int] = []
        if not field.nullable and column.null_count:
            rows += pc.indices_nonzero(pc.is_null(column)).to_pylist()
        if pa.types.is_list(field.type) and not field.type.value_field.nullable:
            lists = column.combine_chunks()
            values = pc.list_flatten(lists)
            if values.null_count:
                rows += pc.list_parent_indices(lists).filter(pc.is_null(values)).to_pylist()
        for row in rows:
            bad.setdefault(row, field.name)
    return bad


_ARROW_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError)


def _row_error(row: dict[str, Any], schema: pa.Schema) -> str:
    """Why Arrow cannot hold one row, naming the column."""
    for field in schema:
        try:
            pa.array([row.get(field.name)], type=field.type)
        except _ARROW_ERRORS as error:
            return f"column {field.name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return "Arrow cannot hold it"


class _RowsToTablesFn(beam.DoFn):
    """Rows in; Arrow tables of up to ROW_GROUP_BYTES out (one row group each), and an `output_rejected`
    dead letter for each row Arrow cannot hold. A refused row was counted as a prediction when it was
    formatted: that is taken back, so that records_read = predictions + dead_letters."""

    def __init__(self, schema: pa.Schema, origin: str, rows_per_batch: int, row_group_bytes: int):
        self._schema = schema
        self._origin = origin
        self._rows_per_batch = rows_per_batch
        self._row_group_bytes = row_group_bytes
        self._binary = _binary_columns(schema)
        self._predictions = metrics.counter(metrics.PREDICTIONS)

    def start_bundle(self):
        self._rows: list[dict[str, Any]] = []
        self._tables: list[pa.Table] = []
        self._bytes = 0

    def process(self, row: dict[str, Any]):
        self._rows.append(row)
        if len(self._rows) >= self._rows_per_batch:
            for letter in self._convert():
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, letter)
            if self._bytes >= self._row_group_bytes:
                yield self._row_group()

    def finish_bundle(self):
        for letter in self._convert():
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, GlobalWindows.windowed_value(letter))
        if self._tables:
            yield GlobalWindows.windowed_value(self._row_group())

    def _row_group(self) -> pa.Table:
        table = pa.concat_tables(self._tables)
        self._tables, self._bytes = [], 0
        return table

    def _convert(self) -> list[DeadLetter]:
        """The rows so far into an Arrow table kept for the next row group; a dead letter for each row
        it cannot hold (found one by one only when the batch as a whole fails)."""
        rows, self._rows = self._rows, []
        if not rows:
            return []
        refused: list[tuple[dict[str, Any], str]] = []
        converted = rows
        if self._binary:
            pairs = [(row, _with_raw_bytes(row, self._binary)) for row in rows]
            refused += [(row, values) for row, values in pairs if isinstance(values, str)]
            rows = [row for row, values in pairs if not isinstance(values, str)]
            converted = [values for _, values in pairs if not isinstance(values, str)]
        try:
            table = pa.Table.from_pylist(converted, schema=self._schema)
        except _ARROW_ERRORS:
            kept = []
            for row, values in zip(rows, converted, strict=True):
                try:
                    pa.Table.from_pylist([values], schema=self._schema)
                    kept.append((row, values))
                except _ARROW_ERRORS:
                    refused.append((row, _row_error(values, self._schema)))
            rows, converted = [row for row, _ in kept], [values for _, values in kept]
            table = pa.Table.from_pylist(converted, schema=self._schema)
        nulls = _null_rows(table)
        if nulls:
            refused += [(rows[index], f"column {nulls[index]}: a null where it holds none") for index in sorted(nulls)]
            table = table.filter(pa.array([index not in nulls for index in range(table.num_rows)]))
        if table.num_rows:
            self._tables.append(table)
            self._bytes += table.nbytes
        return [self._refusal(row, message) for row, message in refused]

    def _refusal(self, row: dict[str, Any], message: str) -> DeadLetter:
        self._predictions.dec()
        progress.predictions_done(-1)
        payload = json.dumps(row, default=str).encode("utf-8")  # json, not orjson: any integer
        return DeadLetter(
            self._origin,
            payload,
            Reason.OUTPUT_REJECTED,
            f"the Parquet schema refused the row: {message}",
            timestamp=utc_now(),
        )


class ParquetWrite(NamedTuple):
    """What writing predictions as Parquet gives back: the files written (what the last step of a batch job
    waits on), and the rows Arrow could not hold, as dead letters."""

    files: beam.PCollection
    refused: beam.PCollection


class WritePredictionsParquet(beam.PTransform):
    """Predictions (BigQuery rows, as `FormatRows` makes them for a table) as Parquet files under `prefix`,
    with the Arrow form of the BigQuery `schema`. `origin` names the output in dead letters (the final
    prefix, where `prefix` is a batch job's staging one)."""

    def __init__(
        self,
        prefix: str,
        schema: dict[str, Any],
        origin: str | None = None,
        rows_per_batch: int = ROWS_PER_BATCH,
        row_group_bytes: int = ROW_GROUP_BYTES,
    ):
        super().__init__()
        self._prefix = prefix
        self._schema = arrow_schema(schema)
        self._origin = origin or prefix
        self._rows_per_batch = rows_per_batch
        self._row_group_bytes = row_group_bytes

    def expand(self, rows):
        convert = _RowsToTablesFn(self._schema, self._origin, self._rows_per_batch, self._row_group_bytes)
        tables = rows | "To Arrow" >> beam.ParDo(convert).with_outputs(DEAD_LETTERS, main="tables")
        files = tables.tables | "Write files" >> beam.io.WriteToParquetBatched(
            self._prefix,
            self._schema,
            codec=CODEC,
            use_compliant_nested_type=True,  # lists as Parquet's spec lays them out: what other readers expect
            file_name_suffix=PARQUET_SUFFIX,
        )
        return ParquetWrite(files, tables[DEAD_LETTERS])
