"""Launch-time checks of Python UDFs, each failure one line: the file exists, compiles and runs; the functions
exist; the function before the model runs on the first records of the input, and what it returns decides how
records feed the model (its fields by name, as a table's columns); on a local run, the function after the model
runs on the first prediction row.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipeline.config import IoKind
from pipeline.data.batches import RowBatch, ScoredBatch, SourceBatch
from pipeline.data.decoders import BIGQUERY_ROWS, decoder_for
from pipeline.data.decoders.udf_records import FIELDLESS_FORMATS, RETURNS, source_records
from pipeline.data.formats import FILES
from pipeline.data.instances import KEY_POSITION, KEY_STR_OR_POSITION
from pipeline.data.rows import RowLayout, included_type
from pipeline.data.udf import UdfCode, UdfLoadError, describe, excerpt, function_of, load, materialized
from pipeline.data.udf_rows import after_model
from pipeline.errors import LaunchError, ModelError
from pipeline.launch.feeding import check_fields, key_kind_of, named_feeding, row_layout
from pipeline.launch.instance_options import InstanceOptions, shape_feeding
from pipeline.launch.record_checks import RecordPlan
from pipeline.launch.table_checks import TableInfo
from pipeline.model.signatures import ModelSignature
from pipeline.reading.udf_files import UdfFileError, read_udf_file

PATH_FLAG = "--python_udf_gcs_path"
BEFORE_FLAG = "--python_udf_function_name"
AFTER_FLAG = "--python_udf_output_function_name"


class CheckedInput(Protocol):
    """What validation learnt of the input: its kind, format and first records."""

    @property
    def source(self) -> IoKind: ...

    @property
    def record_format(self) -> str | None: ...

    @property
    def first(self) -> SourceBatch | None: ...  # the first batch of a file input

    @property
    def table(self) -> TableInfo | None: ...


def _name(value: Any, flag: str) -> str | None:
    name = str(value or "").strip()
    if name and not name.isidentifier():
        raise LaunchError(f"{flag}={value}: must be the name of a Python function, such as prepare")
    return name or None


def read_udf(params: Any) -> UdfCode | None:
    """The UDF file and functions as given, read, compiled and run once here; None where no UDF is given."""
    path = str(params.python_udf_gcs_path or "").strip()
    before = _name(params.python_udf_function_name, BEFORE_FLAG)
    after = _name(params.python_udf_output_function_name, AFTER_FLAG)
    if not path:
        if before or after:
            flag = BEFORE_FLAG if before else AFTER_FLAG
            raise LaunchError(f"{flag} names a function of a file: give the file with {PATH_FLAG}")
        return None
    if not before and not after:
        raise LaunchError(
            f"{PATH_FLAG}={path}: name the function to run with {BEFORE_FLAG} (before the model) or "
            f"{AFTER_FLAG} (after it)"
        )
    try:
        code = read_udf_file(path, before, after)
    except UdfFileError as error:
        raise LaunchError(f"{PATH_FLAG}={path}: {error}") from None
    try:
        load(code)
    except UdfLoadError as error:
        raise LaunchError(f"{PATH_FLAG}={path}: {error}") from None
    for flag, name in ((BEFORE_FLAG, before), (AFTER_FLAG, after)):
        if name is not None:
            try:
                function_of(code, name)
            except UdfLoadError as error:
                raise LaunchError(f"{flag}={name}: {error}") from None
    return code


def first_records(checked: CheckedInput) -> SourceBatch | None:
    """The records a launch read: a file's first batch, a table's first row; none for a stream."""
    if checked.source is IoKind.TEXT:
        return checked.first
    if checked.source is IoKind.BIGQUERY and checked.table is not None and checked.table.first_row is not None:
        return RowBatch("the table's first row", [checked.table.first_row])
    return None


def _first_output(code: UdfCode, name: str, decoding: str, first: SourceBatch | None, text: frozenset[str]) -> Any:
    """What the UDF returns for the first record it keeps (a dict), run over the launch's first records; None
    where it drops them all. Only where none gives a dict is what it raised, or a value of another type, for
    the first record that failed a launch error: the job makes dead letters of a few such records."""
    if first is None or not len(first):
        return None
    function = function_of(code, name)
    positions, records, _ = source_records(first, decoding, text)
    failure: str | None = None
    for position, record in zip(positions, records, strict=True):
        where = f"{BEFORE_FLAG}={name}: on the record at {first.position_of(position)}"
        try:
            result = materialized(function(record))
        except (Exception, SystemExit) as error:
            failure = failure or f"{where}: {describe(error, code.path, name).message}"
            continue
        if isinstance(result, dict):
            return result
        if isinstance(result, list) and all(isinstance(item, dict) for item in result):
            if result:
                return result[0]
        elif result is not None:
            failure = failure or f"{where}: it returned {excerpt(result)}; {RETURNS}"
    if failure is not None:
        raise LaunchError(failure)
    return None


def plan_with_udf(
    code: UdfCode,
    signature: ModelSignature,
    checked: CheckedInput,
    key_field: str,
    included: tuple[str, ...],
    options: InstanceOptions,
) -> RecordPlan:
    """How what the UDF returns feeds the model: planned from its first returned record, whose keys are fed by
    name as a table's columns are (so a UDF can derive a field the model needs). Where no record is at hand (a
    stream; a UDF that drops the first records), each is keyed by its key field, else by its position."""
    assert code.before is not None, "a UDF runs before the model"
    flag = f"{BEFORE_FLAG}={code.before}"
    record_format = checked.record_format or BIGQUERY_ROWS
    if record_format in FIELDLESS_FORMATS or (checked.source is IoKind.PUBSUB and record_format == FILES):
        kind = "messages" if checked.source is IoKind.PUBSUB else "records"
        raise LaunchError(
            f"{flag}: {record_format} {kind} have no fields to give a UDF; a UDF takes JSON objects, CSV rows, "
            "Parquet, Avro or BigQuery rows, or whole files"
        )
    decoding = BIGQUERY_ROWS if checked.source is IoKind.BIGQUERY else record_format
    first = first_records(checked)
    text_inputs = frozenset(spec.name for spec in signature.inputs if spec.dtype == "string" and spec.name != key_field)
    fields = _first_output(code, code.before, decoding, first, text_inputs)
    what = f"{flag}: what it returns for the first record"
    try:
        if fields is None:
            feeding = named_feeding(signature, key_field, KEY_STR_OR_POSITION, included)
            feeding = shape_feeding(feeding, options, signature, None)
            return RecordPlan(decoding, feeding, row_layout(signature, feeding, {}, options))
        key_kind = key_kind_of(fields.get(key_field))
        if key_kind == KEY_POSITION and checked.source is IoKind.BIGQUERY:  # a table's rows have no position
            raise ModelError(f"{what} has no key field '{key_field}': keep the row's key (or set --key_field)")
        feeding = shape_feeding(
            named_feeding(signature, key_field, key_kind, included), options, signature, list(fields)
        )
        check_fields(feeding, list(fields), what)
        absent = [name for name in feeding.included_fields if name not in fields]
        if absent:
            raise ModelError(f"--included_fields: {what} has no field {', '.join(absent)}")
        types = {name: included_type(fields.get(name)) for name in feeding.included_fields}
        plan = RecordPlan(decoding, feeding, row_layout(signature, feeding, types, options))
    except ModelError as error:
        raise LaunchError(str(error)) from None
    decoded = decoder_for(decoding, feeding, code).decode(first) if first is not None else None
    if decoded is not None and not decoded.instances and decoded.dead_letters:
        letter = decoded.dead_letters[0]
        raise LaunchError(f"{flag}: the first records do not fit the model: {letter.reason}: {letter.message}")
    return plan


def check_after_udf(code: UdfCode | None, layout: RowLayout, first: ScoredBatch | None, as_table: bool) -> None:
    """On a local run, the function after the model runs on the first prediction row: what it raises, or a row
    that cannot be written, is a launch error."""
    if code is None or code.after is None or first is None:
        return
    kept, _ = layout.split(first)
    rows, _ = layout.rows(kept, as_table=as_table) if kept is not None else ([], [])
    if kept is None or not rows:
        return
    _, letters = after_model(code, kept.instances, rows[:1], [0], layout.schema() if as_table else None)
    if letters:
        raise LaunchError(f"{AFTER_FLAG}={code.after}: on the first prediction row, {letters[0].message}")
