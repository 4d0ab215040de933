"""Launch-time checks of BigQuery tables: table specs as pure functions, then tables, queries and
datasets as a real BigQuery (the session's emulator) describes them."""

from __future__ import annotations

import uuid

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.table_checks import (
    TableInfo,
    check_output_dataset,
    check_table_spec,
    describe_query,
    describe_table,
    is_table_spec,
    refuse_existing_table,
    table_parts,
)
from tests.emulators import CloudEmulators


@pytest.mark.parametrize(
    "spec",
    [
        "my-project:dataset.table",
        "my-project.dataset.table",
        "dataset.table",
        "example.com:my-project:dataset.table",  # a domain-scoped project
        "dataset.table$20240101",  # a partition decorator
        "dataset.table_2",
    ],
)
def test_table_specs_are_recognised(spec):
    assert is_table_spec(spec)
    assert check_table_spec("--output", spec) == spec


@pytest.mark.parametrize(
    "spec",
    [
        "gs://bucket/predictions",
        "out/predictions.jsonl",  # a relative path with a dot
        "table",  # no dataset
        "project:table",
        "data-set.table",  # dataset names have no hyphens
        "dataset.table name",
        "",
    ],
)
def test_paths_and_bare_names_are_not_table_specs(spec):
    assert not is_table_spec(spec)
    with pytest.raises(LaunchError) as error:
        check_table_spec("--output", spec)
    assert str(error.value) == f"--output={spec}: not a BigQuery table; use project:dataset.table or dataset.table"


@pytest.mark.parametrize(
    ("spec", "project", "parts"),
    [
        ("p:ds.t", None, ("p", "ds", "t")),
        ("p.ds.t", None, ("p", "ds", "t")),
        ("p:ds.t", "other", ("p", "ds", "t")),  # the spec's own project wins over --project
        ("ds.t", "fallback", ("fallback", "ds", "t")),
        ("example.com:p:ds.t", None, ("example.com:p", "ds", "t")),
    ],
)
def test_table_parts_take_the_project_from_the_spec_or_else_from_project(spec, project, parts):
    assert table_parts("--input", spec, project) == parts


def test_table_parts_without_any_project_is_a_one_line_error():
    with pytest.raises(LaunchError) as error:
        table_parts("--input", "ds.t", None)
    assert str(error.value) == "--input=ds.t: name the project (project:dataset.table) or set --project"


# ------------------------------------------------------------------ against the BigQuery emulator


ROWS = [
    {"key": 1, "image": "0.5,0.25", "weights": [1.5, 2.5]},
    {"key": 2, "image": "1,2", "weights": []},
    {"key": 3, "image": "3,4", "weights": [0.0]},
]


@pytest.fixture(scope="module")
def dataset(cloud_emulators: CloudEmulators) -> str:
    """A fresh dataset holding `rows` (3 rows, one REPEATED column) and `empty` (no rows)."""
    from google.cloud import bigquery

    name = f"table_checks_{uuid.uuid4().hex[:8]}"
    client = cloud_emulators.bq.client()
    client.create_dataset(name)
    schema = [
        bigquery.SchemaField("key", "INTEGER"),
        bigquery.SchemaField("image", "STRING"),
        bigquery.SchemaField("weights", "FLOAT", mode="REPEATED"),
    ]
    client.create_table(bigquery.Table(f"{cloud_emulators.project}.{name}.rows", schema=schema))
    client.create_table(bigquery.Table(f"{cloud_emulators.project}.{name}.empty", schema=schema[:2]))
    client.insert_rows_json(f"{cloud_emulators.project}.{name}.rows", ROWS)
    return name


@pytest.mark.emulators
def test_describe_table_reports_columns_row_count_and_one_row(cloud_emulators, dataset):
    info = describe_table(f"{cloud_emulators.project}:{dataset}.rows", None)
    assert info.columns == {"key": "INTEGER", "image": "STRING", "weights": "ARRAY<FLOAT>"}
    assert info.rows == 3
    assert info.first_row in ROWS  # a table's rows come in no set order


@pytest.mark.emulators
def test_describe_table_takes_the_project_from_project_when_the_spec_has_none(cloud_emulators, dataset):
    info = describe_table(f"{dataset}.empty", cloud_emulators.project)
    assert info == TableInfo({"key": "INTEGER", "image": "STRING"}, 0, None)


@pytest.mark.emulators
def test_describe_table_of_a_missing_table_is_a_one_line_error(cloud_emulators, dataset):
    spec = f"{cloud_emulators.project}:{dataset}.missing"
    with pytest.raises(LaunchError) as error:
        describe_table(spec, None)
    assert str(error.value) == f"--input={spec}: no such BigQuery table"


@pytest.mark.emulators
def test_describe_query_dry_runs_and_returns_the_result_columns(cloud_emulators, dataset):
    """A dry run tells the columns only: no row count, no first row."""
    query = f"SELECT key, image AS pixels, weights FROM `{dataset}.rows` WHERE key < 3"
    info = describe_query(query, cloud_emulators.project)
    assert info == TableInfo({"key": "INTEGER", "pixels": "STRING", "weights": "ARRAY<FLOAT>"})


@pytest.mark.emulators
def test_describe_query_refused_by_bigquery_is_a_one_line_error(cloud_emulators, dataset):
    with pytest.raises(LaunchError) as error:
        describe_query(f"SELECT no_such_column FROM `{dataset}.rows`", cloud_emulators.project)
    message = str(error.value)
    assert message.startswith("--query: BigQuery refuses it: 400 ")
    assert "no_such_column" in message
    assert "\n" not in message


def test_describe_query_needs_a_project_before_asking_bigquery():
    with pytest.raises(LaunchError) as error:
        describe_query("SELECT 1", None)
    assert str(error.value) == "--query needs --project: the project the query job runs in"


@pytest.mark.emulators
def test_check_output_dataset_accepts_an_existing_dataset_for_a_table_not_yet_created(cloud_emulators, dataset):
    assert check_output_dataset("--output", f"{dataset}.not_yet_created", cloud_emulators.project) is None


@pytest.mark.emulators
def test_check_output_dataset_refuses_a_missing_dataset_naming_it(cloud_emulators):
    spec = f"{cloud_emulators.project}:no_such_dataset.predictions"
    with pytest.raises(LaunchError) as error:
        check_output_dataset("--dead_letter", spec, None)
    assert str(error.value) == (
        f"--dead_letter={spec}: dataset {cloud_emulators.project}:no_such_dataset does not exist; create it first"
    )


@pytest.mark.emulators
def test_an_existing_table_is_refused_as_vertex_ai_refuses_it_and_a_new_one_is_not(cloud_emulators, dataset):
    assert refuse_existing_table("--output", f"{dataset}.predictions_new", cloud_emulators.project) is None
    spec = f"{cloud_emulators.project}:{dataset}.empty"
    with pytest.raises(LaunchError) as error:
        refuse_existing_table("--dead_letter", spec, None)
    assert str(error.value) == (
        f"--dead_letter={spec}: the table exists; Vertex AI writes new tables only (give a new table, or "
        "--existing_tables=replace to replace its rows)"
    )
