"""How a format feeds a signature, decided once at launch: which inputs records fill, how they are
keyed, and which rows come out. Every mismatch between records and model is one line here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.data.formats import CSV, FILES, JSONL, KEY_VALUES, TFRECORD
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, Feeding
from pipeline.data.rows import VERTEX, RowLayout
from pipeline.data.vertex_columns import Column, source_column, tensor_column, value_column
from pipeline.data.vertex_rows import ARRAY as ARRAY_INSTANCE
from pipeline.data.vertex_rows import B64, OBJECT, PER_LINE, URI, VertexShape, instance_columns
from pipeline.errors import ModelError
from pipeline.launch.instance_options import ARRAY, AS_NAMED, InstanceOptions
from pipeline.launch.vertex_checks import check_vertex_lines
from pipeline.model.signatures import ModelSignature, TensorSpec


def _key_input(signature: ModelSignature, key_field: str, key_kind: str) -> TensorSpec | None:
    """The signature input fed the keys: the one named like the key field (the seed's TF1 graphs
    take `key`). Text keys (positions, text fields) can feed only a tf.string input."""
    spec = signature.input(key_field)
    if spec is not None and key_kind != KEY_INT and spec.dtype != "string":
        raise ModelError(
            f"--model={signature.path}: input '{key_field}' takes {spec.dtype} keys, but the records' keys are "
            f"{'their positions' if key_kind == KEY_POSITION else 'text'}; key them by an integer field"
        )
    return spec


def key_values_feeding(signature: ModelSignature, key_field: str) -> Feeding:
    """`key:v0,v1,...` records fill one float input of fully known shape; the key feeds `key_field`."""
    key_input = _key_input(signature, key_field, KEY_INT)
    others = [spec for spec in signature.inputs if spec is not key_input]
    if len(others) != 1:
        names = ", ".join(spec.name for spec in others)
        raise ModelError(
            f"--model={signature.path}: key:v0,v1,... records feed one input, but the model takes {names}; "
            "give the records as JSON Lines or CSV (--format) to feed inputs by name"
        )
    (image,) = others
    if not image.is_floating or image.size is None or not image.shape:
        raise ModelError(
            f"--model={signature.path}: key:v0,v1,... records feed a float input of fully known shape; input "
            f"'{image.name}' is {image.dtype} {(None, *image.shape)}"
        )
    return Feeding((image,), key_field, KEY_INT, key_input)


def bytes_feeding(
    signature: ModelSignature, record_format: str, key_field: str, key_kind: str, included: tuple[str, ...] = ()
) -> Feeding:
    """TFRecord and whole-file records are bytes for the model's one tf.string input."""
    key_input = _key_input(signature, key_field, key_kind)
    others = [spec for spec in signature.inputs if spec is not key_input]
    what = "each TFRecord record (a serialized tf.train.Example)" if record_format == TFRECORD else "each file's bytes"
    if len(others) != 1 or others[0].dtype != "string" or others[0].shape != ():
        takes = ", ".join(f"{spec.name} {spec.dtype} {(None, *spec.shape)}" for spec in others)
        hint = (
            " (decode inside the model's serving function, as samples/png/model does)" if record_format == FILES else ""
        )
        raise ModelError(
            f"--model={signature.path}: {what} feeds one tf.string input of shape (None,), but the model takes "
            f"{takes}{hint}"
        )
    return Feeding(tuple(others), key_field, key_kind, key_input, tuple(included))


def named_feeding(signature: ModelSignature, key_field: str, key_kind: str, included: tuple[str, ...] = ()) -> Feeding:
    """JSON Lines, CSV and table rows fill every input by its name."""
    key_input = _key_input(signature, key_field, key_kind)
    return Feeding(
        tuple(spec for spec in signature.inputs if spec is not key_input),
        key_field,
        key_kind,
        key_input,
        tuple(included),
    )


def check_fields(feeding: Feeding, fields: list[str], what: str) -> None:
    """Raises a one-line ModelError listing the missing inputs (and the fields the model does not know)."""
    missing = [name for name in feeding.field_names if name not in fields]
    if not missing:
        return
    known = {*feeding.field_names, feeding.key_field, *feeding.included_fields}
    unknown = [name for name in fields if name not in known]
    raise ModelError(
        f"{what} lacks the model's input(s) {', '.join(missing)}"
        + (f"; it has {', '.join(unknown)}, which the model does not take" if unknown else "")
    )


def key_kind_of(value: object) -> str:
    """How a job is keyed, from its first record's key value (None when it has none)."""
    if value is None:
        return KEY_POSITION
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return KEY_INT
    return KEY_STR


SourceColumns = tuple[tuple[str, str, str], ...]  # VertexShape.source_columns: (name, type, mode)


def _triple(field: Column) -> tuple[str, str, str]:
    return field["name"], field["type"], field["mode"]


def table_columns(columns: dict[str, str]) -> SourceColumns:
    """A table's (or a Parquet or Avro file's) columns as the instance's, of the same types."""
    return tuple(_triple(source_column(name, kind)) for name, kind in columns.items())


def record_columns(record: dict[str, Any] | None, feeding: Feeding, by_inputs: bool) -> SourceColumns:
    """A first record's fields as the instance's columns: typed by the model's inputs (`by_inputs`, a JSON
    record: the values a model input takes) or else by the value as Vertex AI reads it (a CSV row)."""
    specs = {spec.name: spec for spec in (*feeding.inputs, *((feeding.key_input,) if feeding.key_input else ()))}
    fields = []
    for name, value in (record or {}).items():
        spec = specs.get(name) if by_inputs else None
        fields.append(_triple(tensor_column(name, spec) if spec else value_column(name, value)))
    return tuple(fields)


def vertex_shape(
    feeding: Feeding,
    options: InstanceOptions,
    record_format: str | None,
    csv_header: tuple[str, ...] = (),
    from_messages: bool = False,
    source_columns: SourceColumns = (),
) -> VertexShape:
    """How Vertex AI writes this job's instances (InstanceConfig, and the guide's output examples): `key` in
    their place where a key field was given (key_values lines, not a Vertex AI format, keep their own key); a
    listed file's URI; a TFRecord record (or a message body) as {"b64": ...}; an array instance as its array;
    a JSON Lines record in its own form; otherwise the object of the record's fields. `source_columns` type
    the instance's columns in tables (the records' fields, seen at launch)."""
    own_key = record_format == KEY_VALUES  # key_values lines, or the 2017 sample's table read as them
    keyed = options.key_given or own_key
    single = feeding.inputs[0].name if len(feeding.inputs) == 1 else None
    if record_format == FILES:
        instance = B64 if from_messages else URI
    elif record_format == TFRECORD:
        instance = B64
    elif options.instance_type == ARRAY or feeding.array_fields or own_key:
        instance = ARRAY_INSTANCE
    elif record_format == JSONL and single is not None:
        instance = PER_LINE
    else:
        instance = OBJECT
    return VertexShape(
        keyed=keyed,
        instance=instance,
        array_input=single if instance in (ARRAY_INSTANCE, PER_LINE) else None,
        array_fields=feeding.array_fields,
        key_input=None if keyed else feeding.key_input,
        key_field=feeding.key_field,
        error_status=options.error_status,
        csv_header=csv_header if record_format == CSV else (),
        instance_fields=options.fields,
        excluded=options.excluded,
        source_columns=source_columns,
    )


def read_columns(layout: RowLayout, names: tuple[str, ...], columns: dict[str, str]) -> tuple[str, ...]:
    """The columns a job reads of a table (or Parquet or Avro files): `names`, and with Vertex AI's shape the
    instance's columns, every field Vertex AI sends (not only the model's inputs)."""
    if layout.shape == VERTEX and not layout.vertex.keyed and layout.vertex.instance not in (URI, B64):
        instance = instance_columns(layout.inputs, layout.vertex)
        names = (*names, *(field["name"] for field in instance if field["name"] in columns))
    return tuple(dict.fromkeys(names))


def row_layout(
    signature: ModelSignature,
    feeding: Feeding,
    included_types: dict[str, str],
    options: InstanceOptions = AS_NAMED,
    vertex: VertexShape | None = None,
) -> RowLayout:
    """Rows hold the key, every output (the model's echo of the key aside: Vertex AI's prediction keeps it, as
    TensorFlow Serving returns it) and the included fields, laid out as the template does or as Vertex AI does
    (`options.output_shape`, with the `vertex` shape)."""
    vertex_echo = options.output_shape == VERTEX and len(signature.outputs) > 1
    outputs = tuple(spec for spec in signature.outputs if vertex_echo or spec.name != feeding.key_field)
    if not outputs:
        raise ModelError(f"--model={signature.path}: the model has no output besides '{feeding.key_field}'")
    included = tuple((name, included_types.get(name, "STRING")) for name in feeding.included_fields)
    plan = RowLayout(outputs, feeding.key_field, feeding.key_kind, included)
    if options.output_shape == VERTEX:  # its tables are checked once the outputs are known (vertex_checks)
        shape = vertex or vertex_shape(feeding, options, None)
        plan = dataclasses.replace(plan, shape=VERTEX, inputs=feeding.inputs, vertex=shape)
        check_vertex_lines(plan, options)
        return plan
    clashes = column_clashes(plan)
    if clashes and set(clashes) & set(options.excluded):
        raise ModelError(
            f"--excluded_fields: {', '.join(clashes)} would be copied to the output (records without a key field "
            "get their excluded fields back, as in Vertex AI) over a column of the same name; key the records "
            "(--key_field) or use --output_shape=vertex"
        )
    if clashes:
        raise ModelError(
            f"--included_fields: {', '.join(clashes)} would overwrite the key or a prediction column; "
            "rename the field or leave it out"
        )
    return plan


def column_clashes(layout: RowLayout) -> list[str]:
    """Columns of the layout's schema named twice (BigQuery column names ignore case)."""
    seen: set[str] = set()
    clashes = []
    for field in layout.schema()["fields"]:
        name = field["name"].lower()
        if name in seen:
            clashes.append(field["name"])
        seen.add(name)
    return clashes
