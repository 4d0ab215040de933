"""Vertex AI batch prediction's instance options, with Vertex AI's meanings, checked at launch:

* `instance_fields` (Vertex AI's includedFields): the only fields fed to the model; for array
  instances also the order of the array's values;
* `excluded_fields`: every field but these is fed; where records have no key field, the excluded
  fields are copied to the output instead, to join predictions back (as Vertex AI does);
* `instance_type`: `object` feeds each field to the input of its name; `array` feeds the chosen
  fields, in order, as one array to a model with a single input.

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


@dataclass(frozen=True)
class InstanceOptions:
    """Vertex AI's instance options as given, and the output shape (the template's rows, or Vertex AI's)."""

    fields: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    instance_type: str = OBJECT
    output_shape: str = ROWS

    @property
    def given(self) -> bool:
        return bool(self.fields or self.excluded or self.instance_type == ARRAY)


AS_NAMED = InstanceOptions()  # none given: every input is fed the field of its name


def field_names(value: Any) -> tuple[str, ...]:
    """A comma-separated list of field names as given on the command line, blanks dropped."""
    return tuple(name.strip() for name in str(value or "").split(",") if name.strip())


def instance_options(params: Any) -> InstanceOptions:
    """The options as given, or a one-line error for a combination Vertex AI refuses too."""
    options = InstanceOptions(
        field_names(params.instance_fields),
        field_names(params.excluded_fields),
        str(params.instance_type or OBJECT).strip().lower(),
        str(params.output_shape or ROWS).strip().lower(),
    )
    if options.instance_type not in (OBJECT, ARRAY):
        raise LaunchError(f"--instance_type={params.instance_type}: must be {OBJECT} or {ARRAY}")
    if options.output_shape not in (ROWS, VERTEX):
        raise LaunchError(f"--output_shape={params.output_shape}: must be {ROWS} or {VERTEX}")
    if options.fields and options.excluded:
        raise LaunchError("--instance_fields and --excluded_fields are both set; give one of them, as in Vertex AI")
    return options


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
    if options.excluded and feeding.key_kind == KEY_POSITION:  # Vertex AI: copied back where there is no key
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
        raise ModelError(
            f"--instance_type=array feeds one array to a model with one input of one dimension; "
            f"{signature.path} takes {takes}"
        )
    if options.fields:
        fields = options.fields
        absent = [name for name in fields if record_fields is not None and name not in record_fields]
        if absent:
            raise ModelError(f"--instance_fields: the records have no field {', '.join(absent)}")
    elif record_fields is not None and ordered:  # a header's or a table's order, as in Vertex AI
        skip = {*options.excluded, feeding.key_field}
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
