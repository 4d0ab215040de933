"""Launch-time checks of BigQuery inputs and outputs, with google-cloud-bigquery.

Each call goes through `retries.retrying`: google-cloud-bigquery does not retry a bare 504 itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.errors import LaunchError, first_line
from pipeline.job.retries import retrying

_TABLE_SPEC = re.compile(
    r"^(?:(?P<project>[a-zA-Z0-9.:-]+)[:.])?(?P<dataset>[a-zA-Z0-9_]+)\.(?P<table>[a-zA-Z0-9_$@-]+)$"
)


def is_table_spec(value: str) -> bool:
    return bool(_TABLE_SPEC.match(value)) and "/" not in value


def check_table_spec(flag: str, spec: str) -> str:
    if not is_table_spec(spec):
        raise LaunchError(f"{flag}={spec}: not a BigQuery table; use project:dataset.table or dataset.table")
    return spec


def table_parts(flag: str, spec: str, project: str | None) -> tuple[str, str, str]:
    match = _TABLE_SPEC.match(spec)
    if match is None:
        raise LaunchError(f"{flag}={spec}: not a BigQuery table; use project:dataset.table or dataset.table")
    table_project = match.group("project") or project
    if not table_project:
        raise LaunchError(f"{flag}={spec}: name the project (project:dataset.table) or set --project")
    return table_project, match.group("dataset"), match.group("table")


def bigquery_client(project: str):
    from google.cloud import bigquery

    return bigquery.Client(project=project)


@dataclass(frozen=True)
class TableInfo:
    """What a launch learns of an input table or query: its columns, row count and first row."""

    columns: dict[str, str]  # name -> BigQuery type (REPEATED columns as ARRAY<type>)
    rows: int | None = None  # a table's row count now (the job checks that it reads as many)
    first_row: dict | None = None


def _columns(schema) -> dict[str, str]:
    return {
        field.name: (f"ARRAY<{field.field_type}>" if field.mode == "REPEATED" else field.field_type) for field in schema
    }


def describe_table(spec: str, project: str | None) -> TableInfo:
    """The source table exists: its columns, rows, and its first row."""
    from google.api_core import exceptions

    table_project, dataset, table_id = table_parts("--input", spec, project)
    client = bigquery_client(table_project)
    try:
        table = retrying(lambda: client.get_table(f"{table_project}.{dataset}.{table_id}"), "tables.get")
    except exceptions.NotFound:
        raise LaunchError(f"--input={spec}: no such BigQuery table") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"--input={spec}: cannot read the table: {first_line(error)}") from None
    columns = _columns(table.schema)
    try:
        rows = retrying(lambda: list(client.list_rows(table, max_results=1)), "tabledata.list")
    except exceptions.GoogleAPIError:
        rows = []  # the first-row check is a courtesy; the job itself will say what is wrong
    return TableInfo(columns, table.num_rows, dict(rows[0].items()) if rows else None)


def describe_query(query: str, project: str | None) -> TableInfo:
    """A dry run (free, nothing read) proves the query valid and shows the columns it returns."""
    from google.api_core import exceptions
    from google.cloud import bigquery

    if not project:
        raise LaunchError("--query needs --project: the project the query job runs in")
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    try:
        job = retrying(lambda: bigquery_client(project).query(query, job_config=config), "dry-run query")
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"--query: BigQuery refuses it: {first_line(error)}") from None
    return TableInfo(_columns(job.schema or ()))


def check_output_dataset(flag: str, spec: str, project: str | None) -> None:
    """The dataset of a table to write exists (the table itself is created if needed)."""
    from google.api_core import exceptions

    table_project, dataset, _ = table_parts(flag, spec, project)
    try:
        retrying(lambda: bigquery_client(table_project).get_dataset(f"{table_project}.{dataset}"), "datasets.get")
    except exceptions.NotFound:
        raise LaunchError(f"{flag}={spec}: dataset {table_project}:{dataset} does not exist; create it first") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"{flag}={spec}: cannot reach the dataset: {first_line(error)}") from None


def refuse_existing_table(flag: str, spec: str, project: str | None) -> None:
    """A table to write does not exist yet: Vertex AI writes its predictions and errors into new tables only."""
    from google.api_core import exceptions

    table_project, dataset, table_id = table_parts(flag, spec, project)
    try:
        retrying(
            lambda: bigquery_client(table_project).get_table(f"{table_project}.{dataset}.{table_id}"), "tables.get"
        )
    except exceptions.NotFound:
        return
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"{flag}={spec}: cannot tell whether the table exists: {first_line(error)}") from None
    raise LaunchError(
        f"{flag}={spec}: the table exists; Vertex AI writes new tables only (give a new table, or "
        "--existing_tables=replace to replace its rows)"
    )
