"""Vertex AI batch prediction's instance options, with Vertex AI's meanings, checked at launch:

* `instance_fields` (Vertex AI's includedFields): the only fields fed to the model; for array
  instances also the order of the array's values;
* `excluded_fields`: every field but these is fed; where records have no key field, the excluded
  fields are copied to the output instead, to join predictions back (as Vertex AI does);
* `instance_type`: `object` feeds each field to the input of its name; `array` feeds the chosen
  fields, in order, as one array to a model with a single input. Unless given, Vertex AI's default with
  `output_shape=vertex`: an array for CSV rows and BigQuery rows; otherwise objects (a JSON array record
  is fed as the array it is either way);
* `key_field` given (Vertex AI's keyField): with `output_shape=vertex`, `key` replaces the instance in the
  output. Not given, Vertex AI has no key field: a field named like its default (`key`) is one more field
  (fed to the model only if it takes an input of that name), and records are keyed by their position.

Not to be confused with `included_fields`, which this template has always used for fields copied to the
output. They apply to records with fields: JSON objects, CSV rows and BigQuery rows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.data.instances import KEY_POSITION, Feeding
from pipeline.data.rows import ROWS, VERTEX
from pipeline.errors import LaunchError, ModelError
from pipeline.model.signatures import ModelSignature

OBJECT, ARRAY = "object", "array"
CODE, STATUS = "code", "status"  # --vertex_error: google.rpc.Status's code, or the Code's name
REFUSE, REPLACE = "refuse", "replace"  # --existing_tables


@dataclass(frozen=True)
class InstanceOptions:
    """Vertex AI's instance options as given, and the output shape (the template's rows, or Vertex AI's)."""

    fields: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    instance_type: str = ""  # OBJECT, ARRAY, or "" where not given
    output_shape: str = ROWS
    key_given: bool = False  # --key_field was given (Vertex AI's keyField), not its default
    error_status: bool = False  # --vertex_error=status
    defaulted: bool = False  # instance_type is Vertex AI's default for the format, not given

    @property
    def given(self) -> bool:
        return bool(self.fields or self.excluded or self.instance_type == ARRAY)

    @property
    def vertex(self) -> bool:
        return self.output_shape == VERTEX


AS_NAMED = InstanceOptions()  # none given: every input is fed the field of its name


def field_names(value: Any) -> tuple[str, ...]:
    """A comma-separated list of field names as given on the command line, blanks dropped."""
    return tuple(name.strip() for name in str(value or "").split(",") if name.strip())


def instance_options(params: Any) -> InstanceOptions:
    """The options as given, or a one-line error for a combination Vertex AI refuses too."""
    error_form = str(params.vertex_error or CODE).strip().lower()
    options = InstanceOptions(
        field_names(params.instance_fields),
        field_names(params.excluded_fields),
        str(params.instance_type or "").strip().lower(),
        str(params.output_shape or ROWS).strip().lower(),
        key_given=bool(str(params.key_field or "").strip()),
        error_status=error_form == STATUS,
    )
    if options.instance_type not in ("", OBJECT, ARRAY):
        raise LaunchError(f"--instance_type={params.instance_type}: must be {OBJECT} or {ARRAY}")
    if options.output_shape not in (ROWS, VERTEX):
        raise LaunchError(f"--output_shape={params.output_shape}: must be {ROWS} or {VERTEX}")
    if error_form not in (CODE, STATUS):
        raise LaunchError(f"--vertex_error={params.vertex_error}: must be {CODE} or {STATUS}")
    if options.fields and options.excluded:
        raise LaunchError("--instance_fields and --excluded_fields are both set; give one of them, as in Vertex AI")
    return options


def refuses_existing_tables(params: Any, options: InstanceOptions) -> bool:
    """Whether a batch job refuses output tables that exist: Vertex AI writes new tables only, so with
    output_shape=vertex unless --existing_tables=replace; the template's rows replace them unless =refuse."""
    value = str(params.existing_tables or "").strip().lower()
    if value not in ("", REFUSE, REPLACE):
        raise LaunchError(f"--existing_tables={params.existing_tables}: must be {REFUSE} or {REPLACE}")
    return value == REFUSE or (not value and options.vertex)


def with_default_type(options: InstanceOptions, rows_of_columns: bool) -> InstanceOptions:
    """The options with Vertex AI's default instance type where none was given: with output_shape=vertex,
    an array for CSV rows and BigQuery rows (`rows_of_columns`), as Vertex AI converts them."""
    if options.vertex and rows_of_columns and not options.instance_type:
        return dataclasses.replace(options, instance_type=ARRAY, defaulted=True)
    return options


def keys_by_field(options: InstanceOptions, signature: ModelSignature, key_field: str) -> bool:
    """Whether records are keyed by their key field: with output_shape=vertex only where --key_field was
    given (or the model takes that field as an input); otherwise, as Vertex AI, by their position."""
    return not options.vertex or options.key_given or signature.input(key_field) is not None


def check_vertex_key(options: InstanceOptions, key_field: str, has_key: bool | None, what: str) -> None:
    """With output_shape=vertex, a --key_field given names a field of every record, as Vertex AI's keyField
    does: refused where the records have none (`has_key` False; None where unknown at launch)."""
    if options.vertex and options.key_given and has_key is False:
        raise ModelError(
            f"--key_field={key_field}: {what} has no field {key_field}; Vertex AI's keyField names a field of "
            "every record (leave --key_field out to write each instance instead)"
        )


def refuse_for(options: InstanceOptions, what: str) -> None:
    """Records without fields (key:v0,v1,..., TFRecord, whole files, the 2017 sample's table) take none."""
    if options.given:
        raise ModelError(
            f"--instance_fields, --excluded_fields and --instance_type apply to records with fields (JSON "
            f"objects, CSV rows, BigQuery rows), not to {what}"
        )


def shape_feeding(
    feeding: Feeding,
    options: InstanceOptions,
    signature: ModelSignature,
    record_fields: list[str] | None,
    ordered: bool = True,
) -> Feeding:
    """`feeding` (every input fed from the field of its name) with the instance options applied.

    `record_fields` are the fields of the first record (a CSV header, a table's columns: `ordered`; a
    JSON object's keys: not), or None where records have no fields to read at launch (JSON arrays,
    messages). A mismatch is a one-line ModelError.
    """
    if not options.given:
        return feeding
    if options.instance_type == ARRAY:
        fields = _array_fields(feeding, options, signature, record_fields, ordered)
        feeding = dataclasses.replace(feeding, array_fields=fields)
    else:
        _check_object_fields(feeding, options, record_fields)
    unkeyed = not options.key_given if options.vertex else feeding.key_kind == KEY_POSITION
    if options.excluded and unkeyed:  # Vertex AI: attached to the output where no key field is given
        copied = tuple(name for name in options.excluded if name not in feeding.included_fields)
        if record_fields is not None:
            copied = tuple(name for name in copied if name in record_fields)
        feeding = dataclasses.replace(feeding, included_fields=feeding.included_fields + copied)
    return feeding


def _check_object_fields(feeding: Feeding, options: InstanceOptions, record_fields: list[str] | None) -> None:
    """Each input is fed the field of its name, so every input's field must be among those fed."""
    if options.fields:
        left_out = [spec.name for spec in feeding.inputs if spec.name not in options.fields]
        if left_out:
            raise ModelError(
                f"--instance_fields leaves out the model's input(s) {', '.join(left_out)}; a model is fed every "
                f"input it takes (it takes {', '.join(spec.name for spec in feeding.inputs)})"
            )
        absent = [name for name in options.fields if record_fields is not None and name not in record_fields]
        if absent:
            raise ModelError(f"--instance_fields: the records have no field {', '.join(absent)}")
    excluded_inputs = [spec.name for spec in feeding.inputs if spec.name in options.excluded]
    if excluded_inputs:
        raise ModelError(
            f"--excluded_fields excludes the model's input(s) {', '.join(excluded_inputs)}; a model is fed every "
            "input it takes"
        )


def _array_fields(
    feeding: Feeding,
    options: InstanceOptions,
    signature: ModelSignature,
    record_fields: list[str] | None,
    ordered: bool,
) -> tuple[str, ...]:
    """The fields whose values, in order, make the one array an array instance feeds; none where each
    record is an array already (a JSON array is fed as it is)."""
    if len(feeding.inputs) != 1 or len(feeding.inputs[0].shape) != 1:
        takes = ", ".join(f"{spec.name} {spec.dtype} {(None, *spec.shape)}" for spec in feeding.inputs)
        default = (
            " (Vertex AI's default for CSV and BigQuery rows; give --instance_type=object to feed fields by name)"
            if options.defaulted
            else ""
        )
        raise ModelError(
            f"--instance_type=array{default} feeds one array to a model with one input of one dimension; "
            f"{signature.path} takes {takes}"
        )
    if options.fields:
        fields = options.fields
        absent = [name for name in fields if record_fields is not None and name not in record_fields]
        if absent:
            raise ModelError(f"--instance_fields: the records have no field {', '.join(absent)}")
    elif record_fields is not None and ordered:  # a header's or a table's order, as in Vertex AI
        skip = {*options.excluded, *((feeding.key_field,) if feeding.key_kind != KEY_POSITION else ())}
        fields = tuple(name for name in record_fields if name not in skip)
    elif record_fields is not None:
        raise ModelError(
            "--instance_type=array: JSON objects need --instance_fields, the fields in the order of the array "
            "(as in Vertex AI)"
        )
    else:
        return ()
    (spec,) = feeding.inputs
    if spec.shape[0] is not None and spec.shape[0] != len(fields):
        raise ModelError(
            f"--instance_type=array: input '{spec.name}' takes {spec.shape[0]} values, but {len(fields)} field(s) "
            f"would fill it ({', '.join(fields)})"
        )
    return fields
