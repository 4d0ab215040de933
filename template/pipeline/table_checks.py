"""Launch-time checks of BigQuery inputs and outputs, with google-cloud-bigquery."""

from __future__ import annotations

import re

from pipeline.options import LaunchError, first_line
from pipeline.records import value_count

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
    table_project = match.group("project") or project
    if not table_project:
        raise LaunchError(f"{flag}={spec}: name the project (project:dataset.table) or set --project")
    return table_project, match.group("dataset"), match.group("table")


def bigquery_client(project: str):
    from google.cloud import bigquery

    return bigquery.Client(project=project)


def check_input_table(spec: str, project: str | None) -> tuple[int | None, int | None]:
    """The source table exists and has key INTEGER, image STRING; returns its first row's value count
    and how many rows it holds now (the job checks that it reads as many)."""
    from google.api_core import exceptions

    table_project, dataset, table_id = table_parts("--input", spec, project)
    client = bigquery_client(table_project)
    try:
        table = client.get_table(f"{table_project}.{dataset}.{table_id}")
    except exceptions.NotFound:
        raise LaunchError(f"--input={spec}: no such BigQuery table") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"--input={spec}: cannot read the table: {first_line(error)}") from None
    _check_columns(f"--input={spec}: the table", table.schema)
    columns = {field.name: field for field in table.schema}
    try:
        rows = list(client.list_rows(table, selected_fields=[columns["image"]], max_results=1))
    except exceptions.GoogleAPIError:
        return None, table.num_rows  # the width check is a courtesy; the job itself will say what is wrong
    image = rows[0]["image"] if rows else None
    return (None if image is None else value_count(f"0:{image}".encode())), table.num_rows


def _check_columns(what: str, schema) -> None:
    kinds = {field.name: field.field_type for field in schema}
    if kinds.get("key") not in ("INTEGER", "INT64") or kinds.get("image") != "STRING":
        found = ", ".join(f"{name} {kind}" for name, kind in kinds.items())
        raise LaunchError(f"{what} needs columns key INTEGER and image STRING; it has {found}")


def check_input_query(query: str, project: str | None) -> None:
    """A dry run (free, nothing read) proves the query valid and shows the columns it returns."""
    from google.api_core import exceptions
    from google.cloud import bigquery

    if not project:
        raise LaunchError("--query needs --project: the project the query job runs in")
    config = bigquery.QueryJobConfig(dry_run=True, use_query_cache=False)
    try:
        job = bigquery_client(project).query(query, job_config=config)
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"--query: BigQuery refuses it: {first_line(error)}") from None
    _check_columns("--query: the query's result", job.schema or ())


def check_output_dataset(flag: str, spec: str, project: str | None) -> None:
    """The dataset of a table to write exists (the table itself is created if needed)."""
    from google.api_core import exceptions

    table_project, dataset, _ = table_parts(flag, spec, project)
    try:
        bigquery_client(table_project).get_dataset(f"{table_project}.{dataset}")
    except exceptions.NotFound:
        raise LaunchError(f"{flag}={spec}: dataset {table_project}:{dataset} does not exist; create it first") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"{flag}={spec}: cannot reach the dataset: {first_line(error)}") from None
