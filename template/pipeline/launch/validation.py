"""Launch-time validation: every user mistake that can be found before workers start, as one line.

The product of validation is a `JobConfig`, the only thing the pipeline graph is built from.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipeline.config import DEAD_LETTER_SUFFIX, IoKind, JobConfig
from pipeline.data.batches import RecordBatch, RowBatch
from pipeline.data.decoders import decoder_for
from pipeline.data.formats import AUTO, FORMATS, JSONL, KEY_VALUES, MESSAGE_FORMATS, format_of_name
from pipeline.data.rows import MODEL_VERSION
from pipeline.errors import LaunchError, ModelError, OutputMismatch, first_line
from pipeline.launch.environment import gpu_workers, is_local
from pipeline.launch.file_checks import check_writable, first_batch, matching_files
from pipeline.launch.instance_options import field_names, instance_options
from pipeline.launch.options import BatchPredictionOptions, canonical_kind
from pipeline.launch.parameters.base import MAX_BATCH_SIZE
from pipeline.launch.pickers import fold_pickers
from pipeline.launch.pubsub_checks import check_subscription, check_topic, is_subscription, is_topic
from pipeline.launch.record_checks import RecordPlan, plan_for_files, plan_for_messages, plan_for_table
from pipeline.launch.table_checks import (
    TableInfo,
    check_output_dataset,
    check_table_spec,
    describe_query,
    describe_table,
    is_table_spec,
    table_parts,
)
from pipeline.model.files import DEFAULT_SIGNATURE
from pipeline.model.loading import LoadedModel, load_model, predict_checked
from pipeline.model.runtime import import_tensorflow
from pipeline.model.signatures import ModelSignature, read_signature
from pipeline.model.versions import locate_served


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
    source: IoKind
    spec: str | None  # file pattern or table
    query: str | None
    record_format: str | None = None
    first: RecordBatch | None = None  # the first records of the first readable file
    table: TableInfo | None = None
    size_bytes: int | None = None  # of the input files, as stored
    file_count: int | None = None


def _record_format(params, pattern: str, files: list) -> str:
    value = str(params.format or AUTO).strip().lower()
    if value not in (AUTO, *FORMATS):
        raise LaunchError(f"--format={params.format}: must be one of {AUTO}, {', '.join(FORMATS)}")
    if value != AUTO:
        return value
    named = format_of_name(pattern)
    return named if named != KEY_VALUES or not files else format_of_name(files[0].path)


def _message_format(params) -> str:
    """What each message's body is: JSON unless --format says key_values or files."""
    value = str(params.format or AUTO).strip().lower()
    if value not in (AUTO, *MESSAGE_FORMATS):
        raise LaunchError(f"--format={params.format}: a message is one of {', '.join(MESSAGE_FORMATS)} (auto: jsonl)")
    return JSONL if value == AUTO else value


def _source_kind(params) -> IoKind:
    """--source, or what --input names: a subscription is read as a stream, anything else as files."""
    if params.source:
        return canonical_kind("source", params.source)
    return IoKind.PUBSUB if is_subscription(params.input) else IoKind.TEXT


def _check_input(params, project: str | None, local_runner: bool) -> _Input:
    source = _source_kind(params)
    query = (params.query or "").strip() or None
    if source is IoKind.PUBSUB:
        if query:
            raise LaunchError("--query applies only to source=bigquery; a Pub/Sub input is a subscription")
        subscription = _require(
            params.input,
            "--input",
            "a subscription projects/<project>/subscriptions/<name> (in the Console form: input_subscription)",
        )
        return _Input(source, check_subscription("--input", subscription), None, _message_format(params))
    if source is IoKind.TEXT:
        if query:
            raise LaunchError("--query applies only to source=bigquery; remove it or set --source=bigquery")
        pattern = _require(
            params.input,
            "--input",
            "a file pattern such as gs://bucket/images*.txt.gz (in the Console form: input_files)",
        )
        _check_readable_by_workers("--input", pattern, local_runner)
        files = matching_files(pattern)
        record_format = _record_format(params, pattern, files)
        first = first_batch(files, record_format)
        size = sum(metadata.size_in_bytes for metadata in files)
        return _Input(source, pattern, None, record_format, first, size_bytes=size, file_count=len(files))
    if str(params.format or AUTO).strip().lower() != AUTO:
        raise LaunchError("--format applies only to file inputs (source=text); a table's columns are fed by name")
    if query:
        if params.input:
            raise LaunchError("--input and --query are both set; give one of them for source=bigquery")
        return _Input(source, None, query, table=describe_query(query, project))
    table = check_table_spec(
        "--input", _require(params.input, "--input", "a table project:dataset.table (in the Console form: input_table)")
    )
    return _Input(source, table, None, table=describe_table(table, project))


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


def _same_location(first: str, second: str, tables: bool, cloud: GoogleCloudOptions) -> bool:
    """Whether two outputs are one: tables compared by their parts (`ds.t`, `p:ds.t`, `p.ds.t` are one)."""
    if tables and cloud.project:
        return table_parts("--dead_letter", first, cloud.project) == table_parts("--output", second, cloud.project)
    return first.rstrip("/") == second.rstrip("/")


def _sink_kind(params, output: str, source: IoKind) -> IoKind:
    """--sink, or what --output names: a topic is published to; a stream's table or files by their form."""
    if params.sink:
        return canonical_kind("sink", params.sink)
    if is_topic(output):
        return IoKind.PUBSUB
    if source is IoKind.PUBSUB:
        return IoKind.BIGQUERY if is_table_spec(output) and FileSystems.get_scheme(output) is None else IoKind.TEXT
    return source


def _dead_letter_kind(sink: IoKind, dead_letter: str) -> IoKind:
    """Dead letters go where predictions go (a table, a topic), unless --dead_letter names a path."""
    if sink is IoKind.PUBSUB and is_topic(dead_letter):
        return IoKind.PUBSUB
    if sink is IoKind.BIGQUERY and "/" not in dead_letter:
        return IoKind.BIGQUERY
    return IoKind.TEXT


def _check_outputs(
    params, sink: IoKind, output: str, cloud: GoogleCloudOptions, local_runner: bool, streaming: bool
) -> tuple[str, IoKind]:
    """(dead-letter location, its kind), with every output location checked."""
    if sink is IoKind.BIGQUERY:
        check_table_spec("--output", output)
    if sink is IoKind.PUBSUB and not streaming:
        raise LaunchError("--sink=pubsub writes from a streaming job: read a subscription (--source=pubsub)")
    dead_letter = (params.dead_letter or "").strip() or output.rstrip("/") + DEAD_LETTER_SUFFIX
    dead_letter_kind = _dead_letter_kind(sink, dead_letter)
    if dead_letter_kind is IoKind.BIGQUERY:
        check_table_spec("--dead_letter", dead_letter)
    if _same_location(dead_letter, output, dead_letter_kind is IoKind.BIGQUERY and sink is IoKind.BIGQUERY, cloud):
        raise LaunchError(
            f"--dead_letter={dead_letter}: is the same as --output, so one would overwrite the other; "
            f"leave it unset for {output.rstrip('/')}{DEAD_LETTER_SUFFIX}"
        )
    loads_files = IoKind.BIGQUERY in (sink, dead_letter_kind) and not streaming  # a stream inserts rows
    if loads_files and not (cloud.temp_location or "").strip().startswith("gs://"):
        raise LaunchError("--temp_location must be a gs:// folder to write BigQuery tables (load files go there)")
    for flag, location, kind in (("--output", output, sink), ("--dead_letter", dead_letter, dead_letter_kind)):
        if kind is IoKind.BIGQUERY:
            check_output_dataset(flag, location, cloud.project)
        elif kind is IoKind.PUBSUB:
            check_topic(flag, location)
        else:
            _check_text_location(flag, location, local_runner)
    return dead_letter, dead_letter_kind


def _load_signature(
    model_path: str, signature_name: str, local_runner: bool
) -> tuple[ModelSignature, LoadedModel | None, float, int | None]:
    """The model's signature, the model itself on a local run, how long loading it took, and the
    version served (the highest of a versioned folder; None for a model that is not one).

    A local run loads the model here, and its workers (in this very process) reuse it. A remote
    launch reads only the signature, never the weights: the launcher VM need not copy and load a
    model of many gigabytes that only workers use.
    """
    _check_readable_by_workers("--model", model_path, local_runner)
    try:
        location, version = locate_served(
            model_path, signature_name
        )  # a wrong path is told without importing TensorFlow
        if not local_runner:
            return read_signature(location), None, 0.0, version
        import_tensorflow()  # not part of the model's load time
        started = time.perf_counter()
        model = load_model(location.path, location)
        return model.get_signature(), model, time.perf_counter() - started, version
    except ModelError as error:
        raise LaunchError(str(error)) from None
    except Exception as error:  # storage errors (403, timeouts) and what a loader did not foresee
        raise LaunchError(f"--model={model_path}: cannot load the model: {first_line(error)}") from None


def _plan(checked: _Input, signature: ModelSignature, params, versioned: bool) -> RecordPlan:
    key_field = str(params.key_field or "key").strip()
    included = field_names(params.included_fields)
    if versioned and MODEL_VERSION in included:
        raise LaunchError(f"--included_fields: {MODEL_VERSION} is the column of the model version; rename the field")
    plan = _plan_by_source(checked, signature, key_field, included, params)
    return dataclasses.replace(plan, rows=dataclasses.replace(plan.rows, versioned=versioned)) if versioned else plan


def _plan_by_source(
    checked: _Input, signature: ModelSignature, key_field: str, included: tuple[str, ...], params
) -> RecordPlan:
    options = instance_options(params)
    if checked.source is IoKind.PUBSUB:
        assert checked.record_format is not None, "a message format is known once the input is checked"
        return plan_for_messages(signature, checked.record_format, key_field, included, options)
    if checked.source is IoKind.TEXT:
        assert checked.record_format is not None, "a file input's format is known once it is checked"
        return plan_for_files(signature, checked.record_format, checked.first, key_field, included, "--input", options)
    assert checked.table is not None, "a table input is described once it is checked"
    what = f"--input={checked.spec}: the table" if checked.spec else "--query: the query's result"
    return plan_for_table(signature, checked.table, key_field, included, what, options)


def _signature_name(params) -> str:
    name = str(params.signature_name or DEFAULT_SIGNATURE).strip()
    if not name or any(character.isspace() for character in name):
        raise LaunchError(
            f"--signature_name={params.signature_name}: must be one signature's name, such as {DEFAULT_SIGNATURE}"
        )
    return name


def _check_predicts(model: LoadedModel, plan: RecordPlan, checked: _Input, model_path: str) -> None:
    """On a local run, the model predicts the first record: a model whose outputs do not match its
    signature is refused at launch instead of failing every batch. (An error the model raises on
    that record is left to the job, which dead-letters the records it fails on.)"""
    first = (
        checked.first
        if checked.source is IoKind.TEXT
        else (RowBatch("table", [checked.table.first_row]) if checked.table and checked.table.first_row else None)
    )
    if first is None or not len(first):
        return
    decoded = decoder_for(plan.decoding, plan.feeding).decode(first)
    if not decoded.instances:
        return
    names = tuple(spec.name for spec in plan.rows.outputs)
    first_record = {name: array[:1] for name, array in decoded.instances[0].features.items()}
    try:
        predict_checked(model, first_record, names)
    except OutputMismatch as error:
        raise LaunchError(f"--model={model_path}: on the first record, {error}") from None
    except Exception:  # what the model raises on a record is the job's to dead-letter
        pass


def validate(options: PipelineOptions) -> JobConfig:
    """Checks the parameters against the world (files, tables, model) and returns the job's config."""
    params = options.view_as(BatchPredictionOptions)
    cloud = options.view_as(GoogleCloudOptions)
    fold_pickers(params)
    batch_size = _batch_size(params.batch_size)
    signature_name = _signature_name(params)
    output = _require(
        params.output,
        "--output",
        "a file prefix for sink=text, a table for sink=bigquery or a topic for sink=pubsub "
        "(in the Console form: output_files, output_table or output_topic)",
    )
    model_path = _require(params.model, "--model", "a SavedModel directory, a .keras file or a TF1 checkpoint")
    local_runner = is_local(options)
    gpu_count = 0 if local_runner else gpu_workers(options)
    checked = _check_input(params, cloud.project, local_runner)
    streaming = checked.source is IoKind.PUBSUB
    sink = _sink_kind(params, output, checked.source)
    dead_letter, dead_letter_kind = _check_outputs(params, sink, output, cloud, local_runner, streaming)
    signature, model, model_load_s, model_version = _load_signature(model_path, signature_name, local_runner)
    plan = _plan(checked, signature, params, versioned=model_version is not None)
    if model is not None:
        _check_predicts(model, plan, checked, model_path)
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
        record_format=checked.record_format,
        decoding=plan.decoding,
        feeding=plan.feeding,
        rows=plan.rows,
        input_columns=plan.columns,
        model_load_s=model_load_s,
        input_rows=checked.table.rows if checked.table else None,
        input_bytes=checked.size_bytes,
        input_files=checked.file_count,
        gpu_count=gpu_count,
        model_version=model_version,
        streaming=streaming,
        max_batch_wait_s=_seconds(params.max_batch_wait_seconds, "--max_batch_wait_seconds", 0.0, 60.0),
        window_s=int(_seconds(params.window_seconds, "--window_seconds", 1, 86_400, whole=True)),
        model_poll_s=int(_seconds(params.model_poll_seconds, "--model_poll_seconds", 1, 86_400, whole=True)),
        signature_name=signature_name,
        max_failure_share=_share(params.max_failure_share, "--max_failure_share"),
    )


def _share(value, flag: str) -> float:
    """A share from 0 (exclusive) to 1, or a one-line error."""
    try:
        share = float(str(value).strip())
    except ValueError:
        share = -1.0
    if not 0.0 < share <= 1.0:
        raise LaunchError(f"{flag}={value}: must be a share above 0 and at most 1 (1 never stops the job)")
    return share


def _seconds(value, flag: str, least: float, most: float, whole: bool = False) -> float:
    """A number of seconds from `least` to `most` (a whole number where `whole`), or a one-line error."""
    kind = "a whole number of seconds" if whole else "a number of seconds"
    try:
        seconds = float(str(value).strip())
    except ValueError:
        raise LaunchError(f"{flag}={value}: must be {kind} from {least:g} to {most:g}") from None
    if not least <= seconds <= most or (whole and not seconds.is_integer()):
        raise LaunchError(f"{flag}={value}: must be {kind} from {least:g} to {most:g}")
    return seconds
