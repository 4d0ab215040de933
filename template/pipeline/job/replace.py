"""The last step of a batch job: the earlier run's outputs replaced by this run's, and only then.

It runs once, after both writes (predictions and dead letters) have completed: their results are its
side inputs, which a runner makes available only once every bundle that produced them has succeeded
(the text writes' final renames, the table writes' load and copy jobs, which Beam waits for). A job
that fails, is cancelled or is killed before this step leaves the earlier outputs exactly as they
were. What the step does per kind of output is in `replace_text` and `replace_tables`; a streaming
job has no such step, and adds to its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from pipeline.config import IoKind, JobConfig
from pipeline.job import metrics
from pipeline.job.parquet_sink import ParquetWrite
from pipeline.job.replace_tables import empty_table
from pipeline.job.replace_text import replace_text_outputs, run_started
from pipeline.job.table_sinks import TableWrite

# Counters of what the step did, under metrics.REPLACED_PREFIX: the summary of a local run says it.
SHARDS_REMOVED = "earlier_shards_removed"
TEMP_FOLDERS_REMOVED = "temp_folders_removed"
TABLES_EMPTIED = "tables_emptied"


@dataclass(frozen=True)
class Output:
    """One output of the job: where it goes, and of what kind."""

    kind: IoKind
    location: str  # a text prefix, or a table


def outputs_of(config: JobConfig) -> tuple[Output, Output]:
    """The predictions and dead-letter outputs, in that order (the order of the step's side inputs)."""
    return Output(config.sink, config.output), Output(config.dead_letter_kind, config.dead_letter)


def _counter(name: str):
    return metrics.counter(metrics.REPLACED_PREFIX + name)


class _ReplaceFn(beam.DoFn):
    """Moves text shards into place and removes earlier ones; empties the tables no load job replaced."""

    def __init__(self, outputs: tuple[Output, Output], run_id: str, project: str | None):
        self._outputs = outputs
        self._run_id = run_id
        self._project = project

    def process(self, _, *done: list):
        by_output = list(zip(self._outputs, done, strict=True))
        written = {output.location: files for output, files in by_output if output.kind is IoKind.TEXT}
        if written:
            replaced = replace_text_outputs(written, self._run_id)
            _counter(SHARDS_REMOVED).inc(replaced.shards)
            _counter(TEMP_FOLDERS_REMOVED).inc(replaced.temp_folders)
        started = run_started(self._run_id)
        assert started is not None, "a run id is a version-1 UUID"
        for output, jobs in by_output:
            if output.kind is IoKind.BIGQUERY and not jobs and empty_table(output.location, self._project, started):
                _counter(TABLES_EMPTIED).inc()


def _done(written: Any, label: str) -> beam.PCollection:
    """What the last step waits on for one write: a text or Parquet write's finalized files; a table write's load
    and copy jobs (none for a table that got no rows). Beam waits for each job before the bundle that started it
    ends, and a side input holds only what succeeded bundles produced: the list is whole once every job succeeded."""
    if isinstance(written, beam.PCollection):
        return written
    if isinstance(written, ParquetWrite):
        return written.files
    result = written.result if isinstance(written, TableWrite) else written
    return (result.destination_load_jobid_pairs, result.destination_copy_jobid_pairs) | label >> beam.Flatten()


class ReplaceEarlierOutputs(beam.PTransform):
    """The last step, applied to the pipeline. `outputs` are the predictions and dead-letter outputs
    (`outputs_of`), `written` what their two writes returned, in that order: for text, the files their
    finalize renamed, in this run's staging folders (a ParquetWrite's files for Parquet); for a table, a
    TableWrite or Beam's WriteResult."""

    def __init__(self, outputs: tuple[Output, Output], run_id: str, project: str | None, written: tuple[Any, Any]):
        super().__init__()
        self._outputs = outputs
        self._run_id = run_id
        self._project = project  # of a table that names none
        self._written = written

    def expand(self, pbegin):
        predictions, dead_letters = self._written
        return (
            pbegin
            | "Once" >> beam.Create([None])
            | "Replace"
            >> beam.ParDo(
                _ReplaceFn(self._outputs, self._run_id, self._project),
                beam.pvalue.AsList(_done(predictions, "Predictions written")),
                beam.pvalue.AsList(_done(dead_letters, "Dead letters written")),
            )
        )
