"""The job's graph: read, parse, predict, write; dead letters gathered beside it."""

from __future__ import annotations

import apache_beam as beam

from pipeline.inference import ImageBatchModelHandler, Predict
from pipeline.parsing import ParseRecords
from pipeline.sinks import (
    WriteDeadLettersBigQuery,
    WriteDeadLettersText,
    WritePredictionsBigQuery,
    WritePredictionsText,
)
from pipeline.sources import ReadBigQueryRecords, ReadTextRecords
from pipeline.validation import JobConfig


def _source(config: JobConfig) -> beam.PTransform:
    if config.source == "bigquery":
        return ReadBigQueryRecords(
            config.batch_size,
            table=config.input,
            query=config.query,
            project=config.project,
            expected_rows=config.input_rows,
        )
    return ReadTextRecords(config.input, config.batch_size)


def _prediction_sink(config: JobConfig) -> beam.PTransform:
    if config.sink == "bigquery":
        return WritePredictionsBigQuery(config.output, config.signature.num_classes, config.project)
    return WritePredictionsText(config.output)


def _dead_letter_sink(config: JobConfig) -> beam.PTransform:
    if config.dead_letter_kind == "bigquery":
        return WriteDeadLettersBigQuery(config.dead_letter, config.project)
    return WriteDeadLettersText(config.dead_letter)


def build(pipeline: beam.Pipeline, config: JobConfig, *, redistribute: bool = False) -> None:
    """Adds the whole job to `pipeline`."""
    handler = ImageBatchModelHandler(config.model)
    records, rejected_rows = pipeline | "Read" >> _source(config)
    images, unparsable = records | "Parse" >> ParseRecords(config.signature.width, redistribute)
    scored, failed = images | "Predict" >> Predict(handler)
    _ = scored | "Write predictions" >> _prediction_sink(config)
    _ = (
        (rejected_rows, unparsable, failed)
        | "Gather dead letters" >> beam.Flatten()
        | "Write dead letters" >> _dead_letter_sink(config)
    )
