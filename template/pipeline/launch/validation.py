"""Launch-time validation: every user mistake that can be found before workers start, as one line.

The product of validation is a `JobConfig`, the only thing the pipeline graph is built from.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

from pipeline.config import DEAD_LETTER_SUFFIX, JSONL_OUTPUT, OUTPUT_SUFFIXES, PARQUET_OUTPUT, IoKind, JobConfig
from pipeline.data.batches import ScoredBatch, SourceBatch
from pipeline.data.decoders import decoder_for
from pipeline.data.formats import AUTO, JSONL, MESSAGE_FORMATS
from pipeline.data.rows import MODEL_VERSION
from pipeline.data.udf import UdfCode
from pipeline.errors import LaunchError, ModelError, OutputMismatch, first_line
from pipeline.launch.environment import gpu_workers, is_local
from pipeline.launch.file_checks import check_file_input, check_writable
from pipeline.launch.instance_options import field_names, instance_options, refuses_existing_tables
from pipeline.launch.model_memory import plan_model_copies
from pipeline.launch.numbers import seconds, share
from pipeline.launch.options import BatchPredictionOptions, canonical_kind
from pipeline.launch.parameters.base import MAX_BATCH_SIZE
from pipeline.launch.pickers import fold_pickers
from pipeline.launch.pubsub_checks import check_subscription, check_topic, is_subscription, is_topic
from pipeline.launch.record_checks import (
    RecordPlan,
    plan_for_columns,
    plan_for_files,
    plan_for_messages,
    plan_for_table,
)
from pipeline.launch.statistics_checks import plan_statistics
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
from pipeline.launch.udf_checks import check_after_udf, first_records, plan_with_udf, read_udf
from pipeline.launch.vertex_checks import BIGQUERY, PARQUET, check_vertex_tables
from pipeline.model.files import DEFAULT_SIGNATURE, ModelLocation
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
    first: SourceBatch | None = None  # the first records of the first readable file
    table: TableInfo | None = None  # a table's, or Parquet's and Avro's columns
    size_bytes: int | None = None  # of the input files, as stored
    file_count: int | None = None


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
        found = check_file_input(pattern, params.format)  # a folder: every file under it but hidden ones
        return _Input(source, found.pattern, None, found.record_format, found.first, found.columns, *found.sizes)
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
    refuse_tables = not streaming and refuses_existing_tables(params, instance_options(params))
    for flag, location, kind in (("--output", output, sink), ("--dead_letter", dead_letter, dead_letter_kind)):
        if kind is IoKind.BIGQUERY:
            check_output_dataset(flag, location, cloud.project)
            if refuse_tables:
                refuse_existing_table(flag, location, cloud.project)
        elif kind is IoKind.PUBSUB:
            check_topic(flag, location)
        else:
            _check_text_location(flag, location, local_runner)
    return dead_letter, dead_letter_kind


def _output_format(params, sink: IoKind, streaming: bool) -> str:
    """What a file output's predictions are: JSON lines, or Parquet files written at the end of a batch job."""
    value = str(params.output_format or JSONL_OUTPUT).strip().lower()
    flag = f"--output_format={params.output_format}"
    if value not in OUTPUT_SUFFIXES:
        raise LaunchError(f"{flag}: must be one of {', '.join(OUTPUT_SUFFIXES)}")
    if value == PARQUET_OUTPUT and sink is not IoKind.TEXT:
        raise LaunchError(f"{flag}: applies only to file outputs (sink=text), not to a {sink.value} output")
    if value == PARQUET_OUTPUT and streaming:
        raise LaunchError(f"{flag}: a streaming job writes JSON lines per window; Parquet is for batch jobs")
    return value


def _load_signature(
    model_path: str, signature_name: str, local_runner: bool
) -> tuple[ModelSignature, LoadedModel | None, float, int | None, ModelLocation]:
    """The model's signature, the model itself on a local run, how long loading it took, the
    version served (the highest of a versioned folder; None for a model that is not one), and where
    the served model's files are.

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
            return read_signature(location), None, 0.0, version, location
        import_tensorflow()  # not part of the model's load time
        started = time.perf_counter()
        model = load_model(location.path, location)
        return model.get_signature(), model, time.perf_counter() - started, version, location
    except ModelError as error:
        raise LaunchError(str(error)) from None
    except Exception as error:  # storage errors (403, timeouts) and what a loader did not foresee
        raise LaunchError(f"--model={model_path}: cannot load the model: {first_line(error)}") from None


def _plan(checked: _Input, signature: ModelSignature, params, versioned: bool, udf: UdfCode | None) -> RecordPlan:
    key_field = str(params.key_field or "key").strip()
    included = field_names(params.included_fields)
    if versioned and MODEL_VERSION in included:
        raise LaunchError(f"--included_fields: {MODEL_VERSION} is the column of the model version; rename the field")
    plan = _plan_by_source(checked, signature, key_field, included, params, udf)
    return dataclasses.replace(plan, rows=dataclasses.replace(plan.rows, versioned=versioned)) if versioned else plan


def _plan_by_source(
    checked: _Input, signature: ModelSignature, key_field: str, included: tuple[str, ...], params, udf: UdfCode | None
) -> RecordPlan:
    options = instance_options(params)
    if udf is not None and udf.before is not None:  # what the UDF returns feeds the model, not the records read
        return plan_with_udf(udf, signature, checked, key_field, included, options)
    if checked.source is IoKind.PUBSUB:
        assert checked.record_format is not None, "a message format is known once the input is checked"
        return plan_for_messages(signature, checked.record_format, key_field, included, options)
    if checked.source is IoKind.TEXT:
        assert checked.record_format is not None, "a file input's format is known once it is checked"
        if checked.table is not None:  # Parquet, Avro: columns fed by name, as a table's
            what = f"--input={checked.spec}: the {checked.record_format} file{'s' * ((checked.file_count or 0) > 1)}"
            args = (checked.record_format, checked.table, checked.first, key_field, included, what, options)
            return plan_for_columns(signature, *args)
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


def _check_predicts(
    model: LoadedModel, plan: RecordPlan, checked: _Input, model_path: str, udf: UdfCode | None
) -> ScoredBatch | None:
    """On a local run, the model predicts the first record: a model whose outputs do not match its
    signature is refused at launch instead of failing every batch. (An error the model raises on
    that record is left to the job, which dead-letters the records it fails on.) Returns that prediction."""
    first = first_records(checked)
    if first is None or not len(first):
        return None
    decoded = decoder_for(plan.decoding, plan.feeding, udf).decode(first)
    if not decoded.instances:
        return None
    names = tuple(spec.name for spec in plan.rows.outputs)
    first_record = {name: array[:1] for name, array in decoded.instances[0].features.items()}
    try:
        outputs = predict_checked(model, first_record, names)
    except OutputMismatch as error:
        raise LaunchError(f"--model={model_path}: on the first record, {error}") from None
    except Exception:  # what the model raises on a record is the job's to dead-letter
        return None
    return ScoredBatch(decoded.instances[0].slice(0, 1), outputs)


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
    output_format = _output_format(params, sink, streaming)
    dead_letter, dead_letter_kind = _check_outputs(params, sink, output, cloud, local_runner, streaming)
    udf = read_udf(params)  # the file read, compiled and run here; its functions found
    signature, model, model_load_s, model_version, location = _load_signature(model_path, signature_name, local_runner)
    model_copies = plan_model_copies(
        params.model_copies,
        options,
        location,
        local_runner=local_runner,
        streaming=streaming,
        gpu_count=gpu_count,
    )
    plan = _plan(checked, signature, params, versioned=model_version is not None, udf=udf)
    table_kinds = {IoKind.BIGQUERY: BIGQUERY} | ({IoKind.TEXT: PARQUET} if output_format == PARQUET_OUTPUT else {})
    instance = instance_options(params)
    check_vertex_tables(
        plan.rows, instance, table_kinds.get(sink), BIGQUERY if dead_letter_kind is IoKind.BIGQUERY else None
    )
    if model is not None:
        first_prediction = _check_predicts(model, plan, checked, model_path, udf)
        check_after_udf(udf, plan.rows, first_prediction, sink is IoKind.BIGQUERY or output_format == PARQUET_OUTPUT)
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
        model_copies=model_copies,
        model_version=model_version,
        streaming=streaming,
        max_batch_wait_s=seconds(params.max_batch_wait_seconds, "--max_batch_wait_seconds", 0.0, 60.0),
        window_s=int(seconds(params.window_seconds, "--window_seconds", 1, 86_400, whole=True)),
        model_poll_s=int(seconds(params.model_poll_seconds, "--model_poll_seconds", 1, 86_400, whole=True)),
        signature_name=signature_name,
        max_failure_share=share(params.max_failure_share, "--max_failure_share"),
        output_format=output_format,
        udf=udf,
        new_tables_only=not streaming and refuses_existing_tables(params, instance),
        statistics=plan_statistics(
            params, cloud, sink, output, local_runner, streaming, signature.inputs + plan.rows.outputs
        ),
    )
