"""Vertex AI's shape at launch: two fields of a line or two columns of a table with one name are one line that
says where each came from, and a BigQuery table's column names are ones BigQuery takes."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.data.batches import RecordBatch
from pipeline.data.formats import CSV, JSONL
from pipeline.data.rows import VERTEX
from pipeline.errors import LaunchError
from pipeline.launch.instance_options import InstanceOptions
from pipeline.launch.record_checks import plan_for_files, plan_for_table
from pipeline.launch.table_checks import TableInfo
from pipeline.launch.vertex_checks import BIGQUERY, PARQUET, check_vertex_tables, column_name_problem
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec

VALUES = TensorSpec("values", "float32", (2,))
SCORE = TensorSpec("score", "float32", ())
ARRAY_MODEL = ModelSignature(ModelFormat.SAVED_MODEL, (VALUES,), (SCORE,), "gs://b/m")
NAMED = ModelSignature(
    ModelFormat.SAVED_MODEL, (TensorSpec("a", "float32", ()), TensorSpec("b", "float32", ())), (SCORE,), "gs://b/n"
)
VERTEX_OPTIONS = InstanceOptions(output_shape=VERTEX)


def table_plan(columns: dict[str, str], options: InstanceOptions = VERTEX_OPTIONS, included=()):
    return plan_for_table(ARRAY_MODEL, TableInfo(columns), "key", included, "--input=p:d.t: the table", options)


def refusal(layout, options=VERTEX_OPTIONS, predictions=BIGQUERY, errors=BIGQUERY) -> str:
    with pytest.raises(LaunchError) as error:
        check_vertex_tables(layout, options, predictions, errors)
    return str(error.value)


def test_an_input_column_named_errors_is_refused_at_launch_not_by_the_errors_tables_load():
    """Vertex AI's errors table: the instance's columns, then `errors`: a column `errors` would be there twice."""
    plan = table_plan({"errors": "FLOAT", "a": "FLOAT"})
    assert refusal(plan.rows) == (
        "--output_shape=vertex: the errors table would have two columns named errors: a field of the records (a "
        "column of the instance), and Vertex AI's errors column; rename the records' field (a table's column "
        "with --query), or leave it out of the option"
    )
    check_vertex_tables(plan.rows, VERTEX_OPTIONS, BIGQUERY, None)  # errors written as lines: no errors table
    check_vertex_tables(plan.rows, VERTEX_OPTIONS, None, None)


def test_a_source_column_named_prediction_names_the_source_not_included_fields_and_ignores_case():
    plan = table_plan({"a": "FLOAT", "Prediction": "FLOAT"})
    message = refusal(plan.rows, predictions=PARQUET, errors=None)
    assert message.startswith(
        "--output_shape=vertex: the predictions table would have two columns named prediction: a field of the "
        "records (a column of the instance), and Vertex AI's prediction column;"
    )
    assert "--included_fields" not in message


def test_an_attached_field_says_which_option_attached_it():
    excluded = InstanceOptions(output_shape=VERTEX, excluded=("note",))
    plan = table_plan({"a": "FLOAT", "b": "FLOAT", "note": "STRING"}, excluded)
    renamed = dataclasses.replace(plan.rows, included=(("Errors", "STRING"),))
    assert "Vertex AI's errors column, and --included_fields;" in refusal(renamed)
    renamed_excluded = dataclasses.replace(renamed, included=(("errors", "STRING"),))
    options = InstanceOptions(output_shape=VERTEX, excluded=("errors",))
    assert "--excluded_fields (attached, as Vertex AI attaches them without a key field)" in refusal(
        renamed_excluded, options
    )


def test_lines_nest_the_instance_so_a_records_field_named_prediction_is_no_clash_there():
    first = RecordBatch("gs://b/in.csv", 2, [b"1,2"], header=b"a,prediction")
    plan = plan_for_files(ARRAY_MODEL, CSV, first, "key", (), "--input", VERTEX_OPTIONS)
    check_vertex_tables(plan.rows, VERTEX_OPTIONS, None, None)  # JSON lines: the instance is one field
    assert "two columns named prediction" in refusal(plan.rows, predictions=BIGQUERY, errors=None)


def test_an_included_field_named_like_a_lines_field_is_refused_in_the_lines():
    first = RecordBatch("gs://b/in.jsonl", 1, [b'{"a": 1, "b": 2, "error": "x"}'])
    with pytest.raises(LaunchError, match="error lines would have two fields named error: Vertex AI's error field, "):
        plan_for_files(NAMED, JSONL, first, "key", ("error",), "--input", VERTEX_OPTIONS)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("bill length", None),  # flexible column names: spaces, dashes, letters of any language
        ("größe-1", None),
        ("", "is empty"),
        ("a.b", "holds '.', a character BigQuery column names cannot hold"),
        ("_PARTITIONTIME", "starts with a prefix BigQuery keeps for itself"),
        ("x" * 301, "is longer than 300 characters"),
    ],
)
def test_a_column_name_bigquery_refuses_says_why(name, problem):
    found = column_name_problem(name)
    assert found == problem if problem is None else found.startswith(problem)


def test_a_csv_header_name_bigquery_refuses_is_one_line_with_a_bigquery_output():
    first = RecordBatch("gs://b/in.csv", 2, [b"1,2"], header=b"a,b.c")
    plan = plan_for_files(ARRAY_MODEL, CSV, first, "key", (), "--input", VERTEX_OPTIONS)
    assert refusal(plan.rows, errors=None) == (
        "--output_shape=vertex: the predictions table would have a column 'b.c' (a field of the records (a column "
        "of the instance)), which holds '.', a character BigQuery column names cannot hold; rename the records' "
        "field (a CSV header's, a JSON record's), or write files (--sink=text)"
    )
    check_vertex_tables(plan.rows, VERTEX_OPTIONS, PARQUET, None)  # Parquet takes any name


def test_the_template_rows_shape_is_not_checked_here():
    table = TableInfo({"key": "INTEGER", "errors": "FLOAT", "a": "FLOAT", "b": "FLOAT"})
    plan = plan_for_table(NAMED, table, "key", ("errors",), "t")
    check_vertex_tables(plan.rows, InstanceOptions(), BIGQUERY, BIGQUERY)
