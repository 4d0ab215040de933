"""Scoring a batch so that a record the model fails on costs only itself.

A model call is all or nothing: one record the graph rejects (an image that does not decode, a
value an assertion refuses) fails the call for the whole batch. When a call fails, the batch is
split in two and each half is scored again, recursively, until every failing record stands
alone; every other record is predicted in the halves that succeed. When the first half
succeeds, the second is known to hold the failure and is split without being called whole.
With k failing records among n, that costs about 1.5·k·log2(n) extra calls, most of them
small; a clean batch costs one `try` more than before.

Three kinds of failure are not about a record, and are told apart:

* The batch does not fit in memory (TensorFlow's ResourceExhaustedError, Python's MemoryError):
  the halves are tried, and once pieces of one size have all fitted, later batches of this model
  version are split to that size, said once on stderr and in the worker log. The limit doubles
  again after `GROW_AFTER` calls that fit; a record that runs out of memory alone is that
  record's dead letter and teaches no limit.
* The runtime or the device fails (`RUNTIME_FAULTS`: TensorFlow's InternalError, UnavailableError,
  CancelledError, DataLossError, AbortedError, DeadlineExceededError): the call is retried twice,
  then `ModelFault` fails the bundle so that the runner retries it elsewhere. No record is blamed.
* The model is broken for this input: when more than `max_failure_share` of the recent records
  fail alone (judged once `BROKEN_AFTER` have), a batch job stops with one line naming the
  model's error, instead of dead-lettering the rest of the input at full cost. A streaming job
  goes on: the records are dead letters, and the log says so once a minute at most.

Everything else the call raises (invalid argument, a failed assertion, a decode error, a wrong
type or shape) is about the records in the batch, and isolates them.

Nothing here knows Beam: the handler in `job.inference` hands each batch to a `Scorer`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.config import DEFAULT_MAX_FAILURE_SHARE
from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason, Rejection, utc_now
from pipeline.errors import ModelBroken, ModelFault
from pipeline.model.health import BROKEN_AFTER, RECENT_RECORDS, ModelHealth

# Errors of the runtime, the device or the process, by TensorFlow's type names: never a record's fault.
RUNTIME_FAULTS = (
    "InternalError",
    "UnavailableError",
    "CancelledError",
    "DataLossError",
    "AbortedError",
    "DeadlineExceededError",
)
FAULT_RETRIES = 2
FAULT_BACKOFF_S = 0.5
_MESSAGE_CHARS = 2000
_STACKTRACE_CHARS = 8000
_OUT_OF_MEMORY_TYPES = ("ResourceExhaustedError", "MemoryError", "OutOfMemoryError")
_LOG = logging.getLogger(__name__)

# One model call: the outputs, and the model version that made them (None for an unversioned model).
Predict = Callable[[dict[str, np.ndarray]], tuple[dict[str, np.ndarray], int | None]]


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error says the batch did not fit in memory (by type name: no TensorFlow import)."""
    if any(type(error).__name__ == name for name in _OUT_OF_MEMORY_TYPES):
        return True
    text = str(error)
    return "OOM when allocating" in text or "out of memory" in text.lower()


def is_runtime_fault(error: BaseException) -> bool:
    """Whether an error is the runtime's or the device's, not the records' (by type name)."""
    return type(error).__name__ in RUNTIME_FAULTS and not is_out_of_memory(error)


# What TensorFlow wraps around an op's own message: where the graph was built, which node ran.
_TENSORFLOW_NOISE_LINES = ("Graph execution error:", "Detected at node ", "<stack traces unavailable>", "File ")
_TENSORFLOW_NOISE = re.compile(r"\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\]")


def error_line(error: BaseException) -> str:
    """The error as one line, TensorFlow's wrapping dropped: its messages span many lines."""
    lines = [line for line in str(error).splitlines() if not line.strip().startswith(_TENSORFLOW_NOISE_LINES)]
    text = _TENSORFLOW_NOISE.sub(" ", " ".join(lines))
    return " ".join(f"{type(error).__name__}: {text}".split())[:_MESSAGE_CHARS]


@dataclass(frozen=True)
class FailedRecord:
    """A record the model failed on alone, and its error: kept whole so that another version may try it."""

    single: InstanceBatch
    error: Exception

    def dead_letter(self) -> DeadLetter:
        """The record's dead letter: the model's own error for it."""
        error = self.error
        kind = "ran out of memory on this record alone" if is_out_of_memory(error) else "failed on this record"
        rejection = Rejection(Reason.INFERENCE_FAILED, f"the model {kind}: {error_line(error)}"[:_MESSAGE_CHARS])
        stacktrace = "".join(traceback.format_exception(error))[-_STACKTRACE_CHARS:]
        letter = self.single.dead_letter(0, rejection, stacktrace, utc_now())
        return dataclasses.replace(letter, code=rpc_code_of(error))


def rpc_code_of(error: BaseException) -> int | None:
    """The google.rpc.Code an error carries: a TensorFlow error's own (`error_code`: InvalidArgumentError is
    3, as TensorFlow Serving answers), RESOURCE_EXHAUSTED (8) for memory; None where it carries none."""
    if is_out_of_memory(error):
        return 8
    code = getattr(error, "error_code", None)
    return code if isinstance(code, int) and not isinstance(code, bool) and 1 <= code <= 16 else None


def as_dead_letters(results: list[ScoredBatch | FailedRecord]) -> list[ScoredBatch | DeadLetter]:
    """Scoring results with each failed record as its dead letter, in order."""
    return [item.dead_letter() if isinstance(item, FailedRecord) else item for item in results]


def _announce_batch_limit(model_key: str, size: int, tried: int) -> None:
    """Says once, on stderr and in the worker log, which batch size fits in memory."""
    message = (
        f"{model_key}: batches of {tried} records ran out of memory; {size} records per model call "
        f"fit, and later batches are split to that size (set --batch_size={size} to skip the retries)"
    )
    _LOG.warning(message)
    if not _logs_to_stderr():
        print(f"warning: {message}", file=sys.stderr, flush=True)


def _logs_to_stderr() -> bool:
    """Whether a warning logged here already reaches stderr (a local run's logging does)."""
    return any(
        getattr(handler, "stream", None) is sys.stderr
        for logger in (_LOG, logging.getLogger())
        for handler in logger.handlers
    )


class _Attempt:
    """What one batch's scoring learned about memory: the smallest piece that ran out of it, the sizes that
    fitted after that, and whether a record ran out of it alone (then the record, not the size, is to blame)."""

    def __init__(self) -> None:
        self.first_ran_out: int | None = None
        self.ran_out_at: int | None = None
        self.fitted: set[int] = set()
        self.alone_ran_out = False


class Scorer:
    """Scores InstanceBatches with `predict`, isolating the records it fails on.

    `score` returns ScoredBatches for what was predicted (possibly several per batch, in pieces)
    and a DeadLetter for each record that fails on its own; `attempt` returns the failed records
    whole instead, for a caller that will try them elsewhere. `stop_when_broken` is a batch job's
    rule; a streaming job keeps going.
    """

    def __init__(
        self,
        predict: Predict,
        model_key: str,
        health: ModelHealth,
        *,
        stop_when_broken: bool = True,
        max_failure_share: float = DEFAULT_MAX_FAILURE_SHARE,
    ):
        self._predict = predict
        self._model_key = model_key
        self._health = health
        self._stop_when_broken = stop_when_broken
        self._max_failure_share = max_failure_share

    def score(self, batch: InstanceBatch) -> list[ScoredBatch | DeadLetter]:
        return as_dead_letters(self.attempt(batch))

    def attempt(self, batch: InstanceBatch) -> list[ScoredBatch | FailedRecord]:
        results: list[ScoredBatch | FailedRecord] = []
        attempt = _Attempt()
        limit = self._health.batch_limit
        if limit is None or len(batch) <= limit:
            self._score(batch, results, attempt)
        else:
            for start in range(0, len(batch), limit):
                self._score(batch.slice(start, start + limit), results, attempt)
        self._learn_from(attempt)
        return results

    def _learn_from(self, attempt: _Attempt) -> None:
        """Learns the largest size that fitted below the smallest that did not, unless a record ran out alone."""
        if attempt.ran_out_at is None or attempt.alone_ran_out:
            return
        fitting = max((size for size in attempt.fitted if size < attempt.ran_out_at), default=0)
        if not fitting:
            return
        announce = self._health.learn_batch_limit(fitting)
        if announce is not None:
            _announce_batch_limit(self._model_key, announce, attempt.first_ran_out or attempt.ran_out_at)

    def _call(self, features: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
        """One model call; a runtime fault is retried, then fails the bundle (`ModelFault`)."""
        for attempt in range(FAULT_RETRIES + 1):
            try:
                return self._predict(features)
            except Exception as error:
                if not is_runtime_fault(error):
                    raise
                if attempt == FAULT_RETRIES:
                    raise ModelFault(
                        f"{self._model_key}: the model's runtime failed {FAULT_RETRIES + 1} times in a row, which is "
                        f"not a record's fault, so the work is handed back to the runner to retry: {error_line(error)}"
                    ) from None
                _LOG.warning("%s: the model's runtime failed, retrying: %s", self._model_key, error_line(error))
                time.sleep(FAULT_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    def _score(self, batch: InstanceBatch, results: list, attempt: _Attempt) -> bool:
        """Scores `batch` in one call, or isolates what fails in it; True if the one call succeeded."""
        try:
            outputs, version = self._call(batch.features)
        except ModelFault:
            raise
        except Exception as error:  # about the records in this batch: isolate, then judge
            self._after_failure(batch, error, results, attempt)
            return False
        results.append(ScoredBatch(batch, outputs, version))
        self._health.record_success(len(batch))
        if attempt.ran_out_at is not None:
            attempt.fitted.add(len(batch))
        return True

    def _after_failure(self, batch: InstanceBatch, error: Exception, results: list, attempt: _Attempt) -> None:
        size = len(batch)
        out_of_memory = is_out_of_memory(error)
        if size > 1:
            if out_of_memory:
                attempt.first_ran_out = attempt.first_ran_out or size
                attempt.ran_out_at = min(attempt.ran_out_at or size, size)
            middle = size // 2
            left_scored = self._score(batch.slice(0, middle), results, attempt)
            right = batch.slice(middle, size)
            if left_scored and not out_of_memory and len(right) > 1:
                # The failing record is in the right half: split it without calling it whole (a call
                # that would fail). A lone record is still called, for its own error.
                self._after_failure(right, error, results, attempt)
            else:
                self._score(right, results, attempt)
            return
        attempt.alone_ran_out = attempt.alone_ran_out or out_of_memory
        results.append(FailedRecord(batch, error))
        self._health.record_failure_alone()
        self._judge(error)

    def _judge(self, error: Exception) -> None:
        """Stops a batch job whose model fails on too many records alone; a stream only says so."""
        share = self._health.failure_share()
        if share is None or share <= self._max_failure_share:
            return
        if not self._stop_when_broken:
            if self._health.time_to_log():
                _LOG.warning(
                    "%s: the model fails on %.0f%% of the recent records alone; they are dead letters and the "
                    "stream goes on. Its error: %s",
                    self._model_key,
                    share * 100,
                    error_line(error),
                )
            return
        if self._health.predicted == 0:
            raise ModelBroken(
                f"the model failed on each of the first {BROKEN_AFTER} records it was given alone, and predicted "
                f"none: it is broken for this input, so the job stops. Its error: {error_line(error)}"
            )
        raise ModelBroken(
            f"the model failed on {share:.0%} of the last {RECENT_RECORDS:,} records alone, more than "
            f"--max_failure_share={self._max_failure_share:g}: it is broken for this input, so the job stops. "
            f"Its error: {error_line(error)}"
        )
