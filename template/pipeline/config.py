"""The validated JobConfig: all that launch hands to the job, and the names both sides agree on.

The one thing job-time code imports from launch-time code's world: `launch.validation` makes a
JobConfig from the parameters and what it checked of the world, and `job.graph` builds the job
from it alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pipeline.data.drift import DEFAULT_THRESHOLD
from pipeline.data.instances import Feeding
from pipeline.data.rows import RowLayout
from pipeline.data.udf import UdfCode
from pipeline.model.memory import ModelCopies
from pipeline.model.signatures import ModelSignature

TEXT_SUFFIX = ".jsonl"  # of prediction and dead-letter files: <prefix>-SSSSS-of-NNNNN.jsonl
PARQUET_SUFFIX = ".parquet"  # of Parquet prediction files: <prefix>-SSSSS-of-NNNNN.parquet
JSONL_OUTPUT, PARQUET_OUTPUT = "jsonl", "parquet"  # --output_format: what a file output's predictions are
OUTPUT_SUFFIXES = {JSONL_OUTPUT: TEXT_SUFFIX, PARQUET_OUTPUT: PARQUET_SUFFIX}
DEAD_LETTER_SUFFIX = "_error_records"  # the default dead-letter location: <output>_error_records
# The share of recent records failing alone above which a batch job stops (--max_failure_share).
DEFAULT_MAX_FAILURE_SHARE = 0.5


@dataclass(frozen=True)
class StatisticsPlan:
    """The run's statistics: where they go (`<location>-stats.json`), and the baseline they are compared with."""

    location: str  # a path prefix: a text output's, a named --stats_location, or one under the temp location
    baseline: dict[str, Any] | None = None  # the baseline's stats JSON, read and checked at launch
    baseline_location: str | None = None
    drift_threshold: float = DEFAULT_THRESHOLD
    only: bool = False  # statistics of the inputs alone: no model call, no prediction written


class IoKind(enum.StrEnum):
    """Where records come from and where predictions go."""

    TEXT = "text"
    BIGQUERY = "bigquery"
    PUBSUB = "pubsub"


@dataclass(frozen=True)
class JobConfig:
    """Everything the graph needs, checked."""

    source: IoKind
    input: str | None
    query: str | None
    sink: IoKind
    output: str
    dead_letter: str
    dead_letter_kind: IoKind
    model: str
    batch_size: int
    signature: ModelSignature
    project: str | None
    record_format: str | None  # of file inputs: key_values, jsonl, csv, tfrecord, files
    decoding: str  # the decoder: a file format, or one for table rows
    feeding: Feeding
    rows: RowLayout
    input_columns: tuple[str, ...] | None = None  # table columns to read
    model_load_s: float = 0.0
    input_rows: int | None = None  # rows of an input table at launch: fewer read is a dead letter
    input_bytes: int | None = None  # size of the input files at launch, for progress
    input_files: int | None = None  # files matched at launch
    gpu_count: int = 0  # GPUs per worker; with any, the workers' processes must see a GPU
    model_copies: ModelCopies = field(default_factory=ModelCopies)  # one per SDK process, or per VM
    model_version: int | None = None  # the version served at launch, for a versioned model folder
    streaming: bool = False  # a Pub/Sub source: an unbounded job
    max_batch_wait_s: float = 0.5  # streaming: how long a record may wait for its batch to fill
    window_s: int = 60  # streaming: the windows of text outputs
    model_poll_s: int = 60  # streaming: how often workers look for a higher model version
    signature_name: str = "serving_default"  # the SavedModel signature called
    max_failure_share: float = (
        DEFAULT_MAX_FAILURE_SHARE  # batch: the share of recent records failing alone that stops the job
    )
    output_format: str = JSONL_OUTPUT  # of a file output's predictions: jsonl, or parquet (batch jobs)
    udf: UdfCode | None = None  # a Python UDF file, run before or after the model (its source, carried to workers)
    new_tables_only: bool = False  # batch: output tables are written only while empty (Vertex AI's new tables)
    statistics: StatisticsPlan | None = None  # None: no statistics
