"""The job's graph: read, decode, predict, format, write; dead letters gathered beside it; in a batch job, the
earlier outputs replaced last."""

from __future__ import annotations

import apache_beam as beam

from pipeline.compat import pull_promptly_in_local_streaming_runs, spare_repeated_work_in_local_streaming_runs
from pipeline.config import PARQUET_OUTPUT, IoKind, JobConfig
from pipeline.data.decoders import decoder_for
from pipeline.data.formats import FILES, PARQUET
from pipeline.data.instances import KEY_POSITION
from pipeline.data.rows import VERTEX
from pipeline.job.decode import DecodeRecords
from pipeline.job.inference import InstanceBatchModelHandler, Predict
from pipeline.job.parquet_sink import ParquetWrite, WritePredictionsParquet
from pipeline.job.parquet_source import ReadParquetFiles
from pipeline.job.replace import ReplaceEarlierOutputs, outputs_of
from pipeline.job.replace_text import new_run_id, staging_prefix
from pipeline.job.report import WriteReport
from pipeline.job.sinks import (
    FormatRows,
    WriteDeadLettersBigQuery,
    WriteDeadLettersPubSub,
    WriteDeadLettersText,
    WritePredictionsBigQuery,
    WritePredictionsPubSub,
    WritePredictionsText,
)
from pipeline.job.sources import ReadFileRecords, ReadMessages, ReadTableRows, ReadWholeFiles
from pipeline.job.statistics import ComputeStatistics

# Below this many input files, a remote job also spreads the records of each file read whole over the
# workers: one large gzip file is read by one worker, which would otherwise decode and score it all.
FEW_FILES = 16


def _source(config: JobConfig, remote: bool) -> beam.PTransform:
    if config.source is IoKind.PUBSUB:
        assert config.input is not None, "a Pub/Sub input names its subscription"
        return ReadMessages(config.input, config.batch_size, config.max_batch_wait_s, _message_windows(config))
    if config.source is IoKind.BIGQUERY:
        return ReadTableRows(
            config.batch_size,
            table=config.input,
            query=config.query,
            project=config.project,
            expected_rows=config.input_rows,
            columns=config.input_columns,
            key_column=None if config.feeding.key_kind == KEY_POSITION else config.feeding.key_field,
        )
    assert config.input is not None and config.record_format is not None, "a file input has a pattern and a format"
    key_column = None if config.feeding.key_kind == KEY_POSITION else config.feeding.key_field
    if config.record_format == PARQUET:  # row groups spread over the workers, not one worker per file
        return ReadParquetFiles(config.input, config.batch_size, config.input_columns, remote, key_column)
    if config.record_format == FILES:
        return ReadWholeFiles(config.input, config.batch_size, spread_files=remote)
    return ReadFileRecords(
        config.input,
        config.record_format,
        config.batch_size,
        spread_files=remote,
        key_column=key_column,
        spread_batches=_spreads_records(config, remote),
    )


def _window_s(config: JobConfig) -> int | None:
    """Text outputs of a streaming job are written per window; a batch job's once, at its end."""
    return config.window_s if config.streaming else None


def _message_windows(config: JobConfig) -> int | None:
    """Messages are batched per window of publish time where a text output writes files per window, so
    that each batch, and all that is made from it, lies in the window its messages were published in."""
    return config.window_s if IoKind.TEXT in (config.sink, config.dead_letter_kind) else None


def _refused(config: JobConfig, written) -> tuple[beam.PCollection, ...]:
    """The prediction rows a table or Parquet refused for good, as dead letters (a TableWrite's or a
    ParquetWrite's); other sinks refuse none."""
    return (written.refused,) if config.sink is IoKind.BIGQUERY or isinstance(written, ParquetWrite) else ()


def _text_prefix(prefix: str, run_id: str | None) -> str:
    """A batch job writes text into its staging folder, whose shards its last step moves into place."""
    return prefix if run_id is None else staging_prefix(prefix, run_id)


def _prediction_sink(config: JobConfig, run_id: str | None) -> beam.PTransform:
    if config.sink is IoKind.PUBSUB:
        return WritePredictionsPubSub(config.output)
    if config.sink is IoKind.BIGQUERY:
        return WritePredictionsBigQuery(
            config.output, config.rows.schema(), config.project, config.streaming, config.new_tables_only
        )
    if config.output_format == PARQUET_OUTPUT:  # batch jobs only: the columns of the table output
        return WritePredictionsParquet(_text_prefix(config.output, run_id), config.rows.schema(), config.output)
    return WritePredictionsText(_text_prefix(config.output, run_id), _window_s(config))


def _as_json_lines(config: JobConfig) -> bool:
    """Rows are JSON lines for files and topics; rows as a table holds them for BigQuery and Parquet."""
    return config.sink is not IoKind.BIGQUERY and config.output_format != PARQUET_OUTPUT


def _dead_letter_sink(config: JobConfig, run_id: str | None) -> beam.PTransform:
    vertex = config.rows if config.rows.shape == VERTEX else None  # Vertex AI's error lines and errors table
    if config.dead_letter_kind is IoKind.PUBSUB:
        return WriteDeadLettersPubSub(config.dead_letter, vertex)
    if config.dead_letter_kind is IoKind.BIGQUERY:
        return WriteDeadLettersBigQuery(
            config.dead_letter, config.project, config.streaming, vertex, config.new_tables_only
        )
    return WriteDeadLettersText(_text_prefix(config.dead_letter, run_id), _window_s(config), vertex)


def _spreads_records(config: JobConfig, remote: bool) -> bool:
    """Whether the record batches of files read whole (compressed, TFRecord, Avro) are reshuffled after
    reading: on remote runners, for a few large files (a table's export is read in parallel already, many
    files spread by themselves, Parquet's row groups and uncompressed line files' byte ranges were spread
    before they were read)."""
    return (
        remote
        and config.source is IoKind.TEXT
        and config.record_format not in (FILES, PARQUET)
        and (config.input_files or 0) < FEW_FILES
    )


def _statistics(config: JobConfig, instances, scored, unread: tuple, dead_letters) -> beam.PCollection | None:
    """The side branch that writes the run's statistics (nothing waits on it); its (path, stats) written."""
    if config.statistics is None:
        return None
    unread_letters = unread | "Gather unread" >> beam.Flatten()
    inputs = {"instances": instances, "unread": unread_letters, "dead_letters": dead_letters or unread_letters}
    if scored is not None:
        inputs["scored"] = scored
    written = inputs | "Statistics" >> ComputeStatistics(config)
    _ = written | "Write report" >> WriteReport(config.statistics.baseline)  # <output>-report.html beside each
    return written


def build(pipeline: beam.Pipeline, config: JobConfig, *, remote: bool = False) -> beam.PCollection | None:
    """Adds the whole job to `pipeline`; `remote` spreads the work over workers (remote runners). Returns the
    statistics written, as (path, stats JSON) (None without statistics), for steps that render them."""
    if config.streaming and not remote:
        pull_promptly_in_local_streaming_runs()
        spare_repeated_work_in_local_streaming_runs()
    handler = InstanceBatchModelHandler(
        config.model,
        tuple(spec.name for spec in config.rows.outputs),
        shared_on_worker=config.model_copies.per_vm or config.gpu_count > 0,
        gpu=config.gpu_count > 0,
        signature=config.signature,
        poll_s=config.model_poll_s if config.streaming and config.model_version is not None else None,
        signature_name=config.signature_name,
        streaming=config.streaming,
        max_failure_share=config.max_failure_share,
    )
    batches, damaged = pipeline | "Read" >> _source(config, remote)
    decoder = decoder_for(config.decoding, config.feeding, config.udf)  # through a UDF first, where one is given
    instances, undecodable = batches | "Decode" >> DecodeRecords(decoder)  # the source spread what needed it
    if config.statistics is not None and config.statistics.only:  # a baseline's statistics: no model call
        return _statistics(config, instances, None, (damaged, undecodable), None)
    scored, failed = instances | "Predict" >> Predict(handler)
    rows, unwritable = scored | "Format rows" >> FormatRows(
        config.rows, as_json_lines=_as_json_lines(config), udf=config.udf
    )
    run_id = None if config.streaming else new_run_id()  # a streaming job adds to its outputs, replaces none
    written = rows | "Write predictions" >> _prediction_sink(config, run_id)
    dead_letters = (damaged, undecodable, failed, unwritable, *_refused(config, written)) | "Gather dead letters" >> (
        beam.Flatten()
    )
    dead_letters_written = dead_letters | "Write dead letters" >> _dead_letter_sink(config, run_id)
    if run_id is not None:  # once both writes have succeeded, never before
        last_step = ReplaceEarlierOutputs(outputs_of(config), run_id, config.project, (written, dead_letters_written))
        _ = pipeline | "Replace earlier outputs" >> last_step
    return _statistics(config, instances, scored, (damaged, undecodable), dead_letters)
