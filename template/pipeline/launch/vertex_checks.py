"""Launch-time checks of Vertex AI's output shape (`output_shape=vertex`): no two fields of a line, nor two
columns of the predictions or errors table, share a name, and a BigQuery table's columns are names BigQuery
takes. Each mismatch is one line that says where each name came from.

A line nests the instance, so its top-level fields are the key or `instance`, `prediction` (or `error`), the
model version and the attached fields. A table flattens the instance into its columns, so a record's field
may meet `prediction`, `errors` or an attached field there (BigQuery's names ignore case).
"""

from __future__ import annotations

import unicodedata

from pipeline.data.rows import MODEL_VERSION, VERTEX, RowLayout
from pipeline.data.vertex_rows import B64, INSTANCE, URI
from pipeline.errors import LaunchError, ModelError
from pipeline.launch.instance_options import InstanceOptions

BIGQUERY, PARQUET = "bigquery", "parquet"  # where a table goes
MAX_COLUMN_NAME = 300
# Names BigQuery keeps for itself (flexible column names: "Column names can't start with ...").
RESERVED_PREFIXES = ("_TABLE_", "_FILE_", "_PARTITION", "_ROW_TIMESTAMP", "__ROOT__", "_COLIDENTIFIER")
_SYMBOLS = set("&%=+:'<>#|")  # the symbols a flexible column name may hold, beside letters, marks and numbers


def _named(layout: RowLayout, options: InstanceOptions, what: str) -> list[tuple[str, str]]:
    """(name, where it came from) of each top-level field of `what`: "prediction lines", "error lines", "the
    predictions table" or "the errors table"."""
    shape = layout.vertex_in_effect
    table = what.endswith("table")
    if shape.keyed:
        head = [("key", "the key (--key_field)")]
    elif not table:
        head = [(INSTANCE, "Vertex AI's instance")]
    else:
        single = shape.instance in (URI, B64) or [field["name"] for field in layout.vertex_columns()] == [INSTANCE]
        origin = "Vertex AI's instance column" if single else "a field of the records (a column of the instance)"
        head = [(field["name"], origin) for field in layout.vertex_columns()]
    kind = "column" if table else "field"
    if what in ("prediction lines", "the predictions table"):
        middle = [("prediction", f"Vertex AI's prediction {kind}")]
        middle += [(MODEL_VERSION, f"the model version's {kind}")] if layout.versioned else []
    else:
        middle = [("errors" if table else "error", f"Vertex AI's {'errors' if table else 'error'} {kind}")]
    attached = [
        (name, "--excluded_fields (attached, as Vertex AI attaches them without a key field)")
        if name in options.excluded
        else (name, "--included_fields")
        for name, _ in layout.included
    ]
    return [*head, *middle, *attached]


def _clash(named: list[tuple[str, str]], ignore_case: bool) -> tuple[str, str, str] | None:
    seen: dict[str, str] = {}
    for name, origin in named:
        folded = name.lower() if ignore_case else name
        if folded in seen:
            return name, seen[folded], origin
        seen[folded] = origin
    return None


def _refuse_clashes(layout: RowLayout, options: InstanceOptions, outputs: tuple[str, ...]) -> None:
    for what in outputs:
        clash = _clash(_named(layout, options, what), ignore_case=what.endswith("table"))
        if clash is not None:
            name, first, second = clash
            kind = "columns" if what.endswith("table") else "fields"
            raise ModelError(
                f"--output_shape=vertex: {what} would have two {kind} named {name}: {first}, and {second}; "
                "rename the records' field (a table's column with --query), or leave it out of the option"
            )


def check_vertex_lines(layout: RowLayout, options: InstanceOptions) -> None:
    """The fields of Vertex AI's prediction and error lines are named once each (a ModelError otherwise)."""
    _refuse_clashes(layout, options, ("prediction lines", "error lines"))


def column_name_problem(name: str) -> str | None:
    """Why BigQuery refuses a column name (its flexible column names' rules), or None."""
    if not name:
        return "is empty"
    if len(name) > MAX_COLUMN_NAME:
        return f"is longer than {MAX_COLUMN_NAME} characters"
    if name.upper().startswith(RESERVED_PREFIXES):
        return f"starts with a prefix BigQuery keeps for itself ({', '.join(RESERVED_PREFIXES)})"
    for character in name:
        category = unicodedata.category(character)
        if category[0] not in "LMN" and category not in ("Pc", "Pd", "Zs") and character not in _SYMBOLS:
            return f"holds {character!r}, a character BigQuery column names cannot hold"
    return None


def check_vertex_tables(
    layout: RowLayout, options: InstanceOptions, predictions: str | None, errors: str | None
) -> None:
    """With Vertex AI's shape, the tables the job writes (`predictions`, `errors`: BIGQUERY, PARQUET or None)
    name each column once, and a BigQuery table's column names are ones BigQuery takes."""
    if layout.shape != VERTEX:
        return
    tables = (("the predictions table", predictions), ("the errors table", errors))
    try:
        _refuse_clashes(layout, options, tuple(what for what, kind in tables if kind is not None))
    except ModelError as error:
        raise LaunchError(str(error)) from None
    for what, kind in tables:
        if kind != BIGQUERY:
            continue
        for name, origin in _named(layout, options, what):
            problem = column_name_problem(name)
            if problem is not None:
                raise LaunchError(
                    f"--output_shape=vertex: {what} would have a column {name!r} ({origin}), which {problem}; "
                    "rename the records' field (a CSV header's, a JSON record's), or write files (--sink=text)"
                )
