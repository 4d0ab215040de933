"""Launch-time validation: every user mistake that can be found before workers start, as one line.

The product of validation is a `JobConfig`, the only thing the pipeline graph is built from.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipeline.environment import is_local
from pipeline.file_checks import check_writable, first_record_width, matching_files
from pipeline.model_files import ModelError, locate_model
from pipeline.models import check_predicts, load_model
from pipeline.options import MAX_BATCH_SIZE, BatchPredictionOptions, LaunchError, canonical_kind, first_line
from pipeline.signatures import ModelSignature, read_signature
from pipeline.table_checks import (
    check_input_query,
    check_input_table,
    check_output_dataset,
    check_table_spec,
    is_table_spec,
)

DEAD_LETTER_SUFFIX = "_error_records"


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
    model_load_s: float = 0.0
    input_rows: int | None = None  # rows of an input table at launch: fewer read is a dead letter
    input_bytes: int | None = None  # size of the input files at launch, for progress


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


def _check_readable_by_workers(flag: str, location: str, local_runner: bool) -> None:
    if not local_runner and FileSystems.get_scheme(location) in (None, "file"):
        raise LaunchError(
            f"{flag}={location}: a local path cannot be read by the workers of a remote runner; give a gs:// path"
        )


@dataclass(frozen=True)
class _Input:
    source: str  # 'text' or 'bigquery'
    spec: str | None  # file pattern or table
    query: str | None
    width: int | None = None  # value count of the first record, if it could be seen
    rows: int | None = None  # rows of a table
    size_bytes: int | None = None  # of the input files, as stored


def _check_input(params, project: str | None, local_runner: bool) -> _Input:
    source = canonical_kind("source", params.source)
    query = (params.query or "").strip() or None
    if source == "text":
        if query:
            raise LaunchError("--query applies only to source=bigquery; remove it or set --source=bigquery")
        pattern = _require(params.input, "--input", "a file pattern such as gs://bucket/images*.txt.gz")
        _check_readable_by_workers("--input", pattern, local_runner)
        files = matching_files(pattern)
        width = first_record_width([metadata.path for metadata in files])
        return _Input(source, pattern, None, width, size_bytes=sum(metadata.size_in_bytes for metadata in files))
    if query:
        if params.input:
            raise LaunchError("--input and --query are both set; give one of them for source=bigquery")
        check_input_query(query, project)
        return _Input(source, None, query)
    table = check_table_spec("--input", _require(params.input, "--input", "a table project:dataset.table"))
    return _Input(source, table, None, *check_input_table(table, project))


def _check_text_location(flag: str, location: str, local_runner: bool) -> None:
    """A text output is a path this job's workers can write and the user can find afterwards."""
    if ":" in location and is_table_spec(location):
        raise LaunchError(
            f"{flag}={location}: looks like a BigQuery table, but it would be written as text files; "
            "set --sink=bigquery for table outputs, or give a path"
        )
    if not local_runner and FileSystems.get_scheme(location) in (None, "file"):
        raise LaunchError(
            f"{flag}={location}: a local path is lost with the workers' disks on a remote runner; give a gs:// path"
        )
    check_writable(flag, location)


def _check_outputs(params, sink: str, output: str, cloud: GoogleCloudOptions, local_runner: bool) -> tuple[str, str]:
    """(dead-letter location, its kind), with every output location checked."""
    if sink == "bigquery":
        check_table_spec("--output", output)
    dead_letter = (params.dead_letter or "").strip() or output.rstrip("/") + DEAD_LETTER_SUFFIX
    # A BigQuery sink sends dead letters to a table unless dead_letter names a path.
    dead_letter_kind = "bigquery" if sink == "bigquery" and "/" not in dead_letter else "text"
    if dead_letter_kind == "bigquery":
        check_table_spec("--dead_letter", dead_letter)
    if dead_letter.rstrip("/") == output.rstrip("/"):
        raise LaunchError(
            f"--dead_letter={dead_letter}: is the same as --output, so one would overwrite the other; "
            f"leave it unset for {output.rstrip('/')}{DEAD_LETTER_SUFFIX}"
        )
    if "bigquery" in (sink, dead_letter_kind) and not (cloud.temp_location or "").strip().startswith("gs://"):
        raise LaunchError("--temp_location must be a gs:// folder to write BigQuery tables (load files go there)")
    for flag, location, kind in (("--output", output, sink), ("--dead_letter", dead_letter, dead_letter_kind)):
        if kind == "bigquery":
            check_output_dataset(flag, location, cloud.project)
        else:
            _check_text_location(flag, location, local_runner)
    return dead_letter, dead_letter_kind


def _load_signature(model_path: str, local_runner: bool) -> tuple[ModelSignature, float]:
    """The model's signature, and how long loading the model took (0 when it was not loaded).

    A local run loads the model here, checks that it predicts, and its workers (in this very
    process) reuse it. A remote launch reads only the signature, never the weights: the
    launcher VM need not copy and load a model of many gigabytes that only workers use.
    """
    _check_readable_by_workers("--model", model_path, local_runner)
    try:
        location = locate_model(model_path)  # a wrong path is told without importing TensorFlow
        signature = read_signature(location)
        signature.check_seed_records()
        if not local_runner:
            return signature, 0.0
        started = time.perf_counter()
        model = load_model(model_path, location)
        load_s = time.perf_counter() - started
        check_predicts(model, model_path)
    except ModelError as error:
        raise LaunchError(str(error)) from None
    except Exception as error:  # storage errors (403, timeouts) and what a loader did not foresee
        raise LaunchError(f"--model={model_path}: cannot load the model: {first_line(error)}") from None
    return model.signature, load_s


def _check_width(signature: ModelSignature, model_path: str, input_width: int | None) -> None:
    if input_width is not None and input_width != signature.width:
        raise LaunchError(
            f"--model={model_path}: takes {signature.width} values per record (input shape "
            f"{signature.input_shape}), but the first record of --input has {input_width}; "
            "check that the model and the data belong together"
        )


def validate(options: PipelineOptions) -> JobConfig:
    """Checks the parameters against the world (files, tables, model) and returns the job's config."""
    params = options.view_as(BatchPredictionOptions)
    cloud = options.view_as(GoogleCloudOptions)
    batch_size = _batch_size(params.batch_size)
    sink_value = params.sink
    output = _require(params.output, "--output", "a file prefix for sink=text or a table for sink=bigquery")
    model_path = _require(params.model, "--model", "a SavedModel directory, a .keras file or a TF1 checkpoint prefix")
    local_runner = is_local(options)
    checked = _check_input(params, cloud.project, local_runner)
    sink = canonical_kind("sink", sink_value) if sink_value else checked.source
    dead_letter, dead_letter_kind = _check_outputs(params, sink, output, cloud, local_runner)
    signature, model_load_s = _load_signature(model_path, local_runner)
    _check_width(signature, model_path, checked.width)
    return JobConfig(
        source=checked.source,
        input=checked.spec,
        query=checked.query,
        sink=sink,
        output=output,
        dead_letter=dead_letter,
        dead_letter_kind=dead_letter_kind,
        model=model_path,
        batch_size=batch_size,
        signature=signature,
        project=cloud.project,
        model_load_s=model_load_s,
        input_rows=checked.rows,
        input_bytes=checked.size_bytes,
    )
