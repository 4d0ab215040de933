"""The job's graph: read, decode, predict, format, write; dead letters gathered beside it."""

from __future__ import annotations

import apache_beam as beam

from pipeline.compat import pull_promptly_in_local_streaming_runs
from pipeline.config import IoKind, JobConfig
from pipeline.data.decoders import decoder_for
from pipeline.data.formats import FILES
from pipeline.data.instances import KEY_POSITION
from pipeline.data.rows import VERTEX
from pipeline.job.decode import DecodeRecords
from pipeline.job.inference import InstanceBatchModelHandler, Predict
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

# Below this many input files, a remote job also spreads the records of each file over the
# workers: one large gzip file is read by one worker, which would otherwise decode and score it all.
FEW_FILES = 16


def _source(config: JobConfig, remote: bool) -> beam.PTransform:
    if config.source is IoKind.PUBSUB:
        assert config.input is not None, "a Pub/Sub input names its subscription"
        return ReadMessages(config.input, config.batch_size, config.max_batch_wait_s)
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
    if config.record_format == FILES:
        return ReadWholeFiles(config.input, config.batch_size, spread_files=remote)
    return ReadFileRecords(config.input, config.record_format, config.batch_size, spread_files=remote)


def _window_s(config: JobConfig) -> int | None:
    """Text outputs of a streaming job are written per window; a batch job's once, at its end."""
    return config.window_s if config.streaming else None


def _prediction_sink(config: JobConfig) -> beam.PTransform:
    if config.sink is IoKind.PUBSUB:
        return WritePredictionsPubSub(config.output)
    if config.sink is IoKind.BIGQUERY:
        return WritePredictionsBigQuery(config.output, config.rows.schema(), config.project, config.streaming)
    return WritePredictionsText(config.output, _window_s(config))


def _dead_letter_sink(config: JobConfig) -> beam.PTransform:
    vertex = config.rows.shape == VERTEX
    if config.dead_letter_kind is IoKind.PUBSUB:
        return WriteDeadLettersPubSub(config.dead_letter, vertex)
    if config.dead_letter_kind is IoKind.BIGQUERY:
        return WriteDeadLettersBigQuery(config.dead_letter, config.project, config.streaming, vertex)
    return WriteDeadLettersText(config.dead_letter, _window_s(config), vertex)


def _spreads_records(config: JobConfig, remote: bool) -> bool:
    """Whether record batches are reshuffled after reading: on remote runners, for a few large files
    (a table's export is read in parallel already, and many files spread by themselves)."""
    return (
        remote
        and config.source is IoKind.TEXT
        and config.record_format != FILES
        and (config.input_files or 0) < FEW_FILES
    )


def build(pipeline: beam.Pipeline, config: JobConfig, *, remote: bool = False) -> None:
    """Adds the whole job to `pipeline`; `remote` spreads the work over workers (remote runners)."""
    if config.streaming and not remote:
        pull_promptly_in_local_streaming_runs()
    handler = InstanceBatchModelHandler(
        config.model,
        tuple(spec.name for spec in config.rows.outputs),
        shared_on_worker=config.gpu_count > 0,
        signature=config.signature,
        poll_s=config.model_poll_s if config.streaming and config.model_version is not None else None,
        signature_name=config.signature_name,
    )
    batches, damaged = pipeline | "Read" >> _source(config, remote)
    decoder = decoder_for(config.decoding, config.feeding)
    instances, undecodable = batches | "Decode" >> DecodeRecords(decoder, redistribute=_spreads_records(config, remote))
    scored, failed = instances | "Predict" >> Predict(handler)
    rows, unwritable = scored | "Format rows" >> FormatRows(
        config.rows, as_json_lines=config.sink is not IoKind.BIGQUERY
    )
    _ = rows | "Write predictions" >> _prediction_sink(config)
    _ = (
        (damaged, undecodable, failed, unwritable)
        | "Gather dead letters" >> beam.Flatten()
        | "Write dead letters" >> _dead_letter_sink(config)
    )
