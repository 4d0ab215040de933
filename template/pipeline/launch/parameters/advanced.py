"""The Advanced group: how records are batched for the model, and when failing records stop a batch job."""

from __future__ import annotations

from pipeline.config import DEFAULT_MAX_FAILURE_SHARE
from pipeline.launch.parameters.base import (
    ADVANCED,
    BATCH,
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_WAIT_S,
    MAX_BATCH_SIZE,
    POSITIVE_INTEGER,
    SECONDS,
    SHARE,
    STREAMING,
    Parameter,
)

ADVANCED_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="batch_size",
        label="Largest inference batch",
        help=f"Upper bound of the number of records sent to the model at once (1 to {MAX_BATCH_SIZE}).",
        param_type="NUMBER",
        group=ADVANCED,
        default=DEFAULT_BATCH_SIZE,
        regexes=(POSITIVE_INTEGER,),
        example="256",
    ),
    Parameter(
        name="max_batch_wait_seconds",
        label="Longest wait to fill a batch",
        help="In a streaming job, how long a record may wait for others to fill its batch before the batch is "
        "scored anyway: a trickle is scored promptly, a flood in full batches.",
        param_type="NUMBER",
        group=ADVANCED,
        default=DEFAULT_BATCH_WAIT_S,
        regexes=(SECONDS,),
        example="0.5",
        modes=(STREAMING,),
    ),
    Parameter(
        name="max_failure_share",
        label="Share of failing records that stops a batch job",
        help="In a batch job, the share of the recent records (about the last 1,000, judged once 100 have failed "
        "or 1,000 have been seen) that may fail alone on the model before the job stops as broken for its input; "
        "1 never stops it. A streaming job never stops for this: the records are dead letters.",
        param_type="NUMBER",
        group=ADVANCED,
        default=DEFAULT_MAX_FAILURE_SHARE,
        regexes=(SHARE,),
        example="0.5",
        modes=(BATCH,),
    ),
)
