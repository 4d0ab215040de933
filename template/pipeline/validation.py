"""Launch-time checks: every user mistake that can be found before workers start, as one line.

The product of validation is a `JobConfig`, the only thing the pipeline graph is built from.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipeline.models import ModelError, ModelSignature, load_model
from pipeline.options import MAX_BATCH_SIZE, BatchPredictionOptions, LaunchError, canonical_kind

DEAD_LETTER_SUFFIX = "_error_records"
_TABLE_SPEC = re.compile(
    r"^(?:(?P<project>[a-zA-Z0-9.:-]+)[:.])?(?P<dataset>[a-zA-Z0-9_]+)\.(?P<table>[a-zA-Z0-9_$@-]+)$"
)


@dataclass(frozen=True)
class JobConfig:
    """Everything the graph needs, checked."""

    source: str  # 'text' or 'bigquery'
    input: str | None
    query: str | None
    sink: str
    output: str
    dead_letter: str
    dead_letter_kind: str  # 'text' or 'bigquery'
    model: str
    batch_size: int
    signature: ModelSignature
    project: str | None
    temp_location: str | None
    model_load_s: float = 0.0


def is_table_spec(value: str) -> bool:
    return bool(_TABLE_SPEC.match(value)) and "/" not in value


def _require(value: str | None, flag: str, what: str) -> str:
    if value is None or not str(value).strip():
        raise LaunchError(f"{flag} is required: {what}")
    return str(value).strip()


def _batch_size(value) -> int:
    try:
        size = int(str(value).strip())
    except ValueError:
        raise LaunchError(f"--batch_size={value}: must be a whole number from 1 to {MAX_BATCH_SIZE}") from None
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise LaunchError(f"--batch_size={value}: must be from 1 to {MAX_BATCH_SIZE}")
    return size


def _check_table(flag: str, spec: str) -> str:
    if not is_table_spec(spec):
        raise LaunchError(f"{flag}={spec}: not a BigQuery table; use project:dataset.table or dataset.table")
    return spec


def _table_parts(flag: str, spec: str, project: str | None) -> tuple[str, str, str]:
    match = _TABLE_SPEC.match(spec)
    table_project = match.group("project") or project
    if not table_project:
        raise LaunchError(f"{flag}={spec}: name the project (project:dataset.table) or set --project")
    return table_project, match.group("dataset"), match.group("table")


def _bigquery_client(project: str):
    from google.cloud import bigquery

    return bigquery.Client(project=project)


def _check_input_table(spec: str, project: str | None) -> None:
    """The source table exists and has the seed's columns: key INTEGER, image STRING."""
    from google.api_core import exceptions

    table_project, dataset, table = _table_parts("--input", spec, project)
    try:
        schema = _bigquery_client(table_project).get_table(f"{table_project}.{dataset}.{table}").schema
    except exceptions.NotFound:
        raise LaunchError(f"--input={spec}: no such BigQuery table") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"--input={spec}: cannot read the table: {_first_line(error)}") from None
    columns = {field.name: field.field_type for field in schema}
    if columns.get("key") not in ("INTEGER", "INT64") or columns.get("image") != "STRING":
        found = ", ".join(f"{name} {kind}" for name, kind in columns.items())
        raise LaunchError(f"--input={spec}: the table needs columns key INTEGER and image STRING; it has {found}")


def _check_output_dataset(flag: str, spec: str, project: str | None) -> None:
    """The dataset of a table to write exists (the table itself is created if needed)."""
    from google.api_core import exceptions

    table_project, dataset, _ = _table_parts(flag, spec, project)
    try:
        _bigquery_client(table_project).get_dataset(f"{table_project}.{dataset}")
    except exceptions.NotFound:
        raise LaunchError(f"{flag}={spec}: dataset {table_project}:{dataset} does not exist; create it first") from None
    except exceptions.GoogleAPIError as error:
        raise LaunchError(f"{flag}={spec}: cannot reach the dataset: {_first_line(error)}") from None


def _check_input_files(pattern: str) -> None:
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise LaunchError(f"--input={pattern}: cannot list files: {_first_line(error)}") from None
    if not matched:
        raise LaunchError(f"--input={pattern}: no file matches this pattern")


def _check_writable(flag: str, prefix: str) -> None:
    """Writes and deletes a probe file where the output files will go."""
    directory, _ = FileSystems.split(prefix)
    probe = FileSystems.join(directory or ".", f".write-probe-{uuid.uuid4().hex}")
    try:
        FileSystems.create(probe).close()
        FileSystems.delete([probe])
    except Exception as error:  # permission, missing bucket, read-only filesystem, ...
        raise LaunchError(f"{flag}={prefix}: cannot write there: {_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _default_dead_letter(output: str) -> str:
    return output.rstrip("/") + DEAD_LETTER_SUFFIX


def validate(options: PipelineOptions) -> JobConfig:
    """Checks the parameters against the world (files, model) and returns the job's config."""
    params = options.view_as(BatchPredictionOptions)
    cloud = options.view_as(GoogleCloudOptions)
    source = canonical_kind("source", params.source)
    sink = canonical_kind("sink", params.sink) if params.sink else source
    batch_size = _batch_size(params.batch_size)
    output = _require(params.output, "--output", "a file prefix for sink=text or a table for sink=bigquery")
    model_path = _require(params.model, "--model", "a SavedModel directory, a .keras file or a TF1 checkpoint prefix")
    query = (params.query or "").strip() or None

    if source == "text":
        if query:
            raise LaunchError("--query applies only to source=bigquery; remove it or set --source=bigquery")
        input_spec = _require(params.input, "--input", "a file pattern such as gs://bucket/images*.txt.gz")
        _check_input_files(input_spec)
    elif query:
        if params.input:
            raise LaunchError("--input and --query are both set; give one of them for source=bigquery")
        input_spec = None
    else:
        input_spec = _check_table("--input", _require(params.input, "--input", "a table project:dataset.table"))
        _check_input_table(input_spec, cloud.project)

    if sink == "bigquery":
        _check_table("--output", output)
    dead_letter = (params.dead_letter or "").strip() or _default_dead_letter(output)
    # A BigQuery sink sends dead letters to a table unless dead_letter names a path.
    dead_letter_kind = "bigquery" if sink == "bigquery" and "/" not in dead_letter else "text"
    if dead_letter_kind == "bigquery":
        _check_table("--dead_letter", dead_letter)
    if "bigquery" in (sink, dead_letter_kind):
        if not (cloud.temp_location or "").strip().startswith("gs://"):
            raise LaunchError("--temp_location must be a gs:// folder to write BigQuery tables (load files go there)")
        if sink == "bigquery":
            _check_output_dataset("--output", output, cloud.project)
        if dead_letter_kind == "bigquery":
            _check_output_dataset("--dead_letter", dead_letter, cloud.project)
    if sink == "text":
        _check_writable("--output", output)
    if dead_letter_kind == "text":
        _check_writable("--dead_letter", dead_letter)

    load_started = time.perf_counter()
    try:
        signature = load_model(model_path).signature
    except ModelError as error:
        raise LaunchError(str(error)) from None

    return JobConfig(
        source=source,
        input=input_spec,
        query=query,
        sink=sink,
        output=output,
        dead_letter=dead_letter,
        dead_letter_kind=dead_letter_kind,
        model=model_path,
        batch_size=batch_size,
        signature=signature,
        project=cloud.project,
        temp_location=cloud.temp_location,
        model_load_s=time.perf_counter() - load_started,
    )
