"""The job's graph: read, decode, predict, format, write; dead letters gathered beside it."""

from __future__ import annotations

import apache_beam as beam

from pipeline.decoders import decoder_for
from pipeline.formats import FILES
from pipeline.inference import InstanceBatchModelHandler, Predict
from pipeline.parsing import DecodeRecords
from pipeline.sinks import (
    FormatRows,
    WriteDeadLettersBigQuery,
    WriteDeadLettersText,
    WritePredictionsBigQuery,
    WritePredictionsText,
)
from pipeline.sources import ReadFileRecords, ReadTableRows, ReadWholeFiles
from pipeline.validation import JobConfig


def _source(config: JobConfig) -> beam.PTransform:
    if config.source == "bigquery":
        return ReadTableRows(
            config.batch_size,
            table=config.input,
            query=config.query,
            project=config.project,
            expected_rows=config.input_rows,
            columns=config.input_columns,
        )
    if config.record_format == FILES:
        return ReadWholeFiles(config.input, config.batch_size)
    return ReadFileRecords(config.input, config.record_format, config.batch_size)


def _prediction_sink(config: JobConfig) -> beam.PTransform:
    if config.sink == "bigquery":
        return WritePredictionsBigQuery(config.output, config.rows.schema(), config.project)
    return WritePredictionsText(config.output)


def _dead_letter_sink(config: JobConfig) -> beam.PTransform:
    if config.dead_letter_kind == "bigquery":
        return WriteDeadLettersBigQuery(config.dead_letter, config.project)
    return WriteDeadLettersText(config.dead_letter)


def build(pipeline: beam.Pipeline, config: JobConfig, *, redistribute: bool = False) -> None:
    """Adds the whole job to `pipeline`."""
    handler = InstanceBatchModelHandler(
        config.model, tuple(spec.name for spec in config.rows.outputs), shared_copies=config.gpu_count
    )
    batches, damaged = pipeline | "Read" >> _source(config)
    decoder = decoder_for(config.decoding, config.feeding)
    instances, undecodable = batches | "Decode" >> DecodeRecords(decoder, redistribute)
    scored, failed = instances | "Predict" >> Predict(handler)
    rows, unwritable = scored | "Format rows" >> FormatRows(config.rows, as_json_lines=config.sink == "text")
    _ = rows | "Write predictions" >> _prediction_sink(config)
    _ = (
        (damaged, undecodable, failed, unwritable)
        | "Gather dead letters" >> beam.Flatten()
        | "Write dead letters" >> _dead_letter_sink(config)
    )
