"""Scoring a batch so that a record the model fails on costs only itself.

A model call is all or nothing: one record the graph rejects (an image that does not decode, a
value an assertion refuses) fails the call for the whole batch. When a call fails, the batch is
split in two and each half is scored again, recursively, until every failing record stands
alone; every other record is predicted in the halves that succeed. When the first half
succeeds, the second is known to hold the failure and is split without being called whole.
With k failing records among n, that costs about 1.5·k·log2(n) extra calls, most of them
small; a clean batch costs one `try` more than before.

Two kinds of failure are not about a record, and are told apart:

* The batch does not fit in memory (TensorFlow's ResourceExhaustedError, Python's MemoryError):
  the halves are tried and the size that fits is remembered for every later batch of this
  model in this process, and said once, on stderr and in the worker log.
* The model is broken for this input: when the first `BROKEN_AFTER` records that the model is
  given alone all fail and none has been predicted yet, the job stops with one line naming the
  model's error, instead of dead-lettering the whole input at full cost.

Nothing here knows Beam: the handler in `job.inference` hands each batch to a `Scorer`.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason, Rejection, utc_now
from pipeline.errors import ModelBroken

# Records failing alone, with none predicted before them, after which the model counts as broken.
BROKEN_AFTER = 100
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


# What TensorFlow wraps around an op's own message: where the graph was built, which node ran.
_TENSORFLOW_NOISE_LINES = ("Graph execution error:", "Detected at node ", "<stack traces unavailable>", "File ")
_TENSORFLOW_NOISE = re.compile(r"\[\[\{\{node [^}]*\}\}\]\]|\[Op:[^\]]*\]")


def error_line(error: BaseException) -> str:
    """The error as one line, TensorFlow's wrapping dropped: its messages span many lines."""
    lines = [line for line in str(error).splitlines() if not line.strip().startswith(_TENSORFLOW_NOISE_LINES)]
    text = _TENSORFLOW_NOISE.sub(" ", " ".join(lines))
    return " ".join(f"{type(error).__name__}: {text}".split())[:_MESSAGE_CHARS]


@dataclass
class ModelHealth:
    """What this process has learned about one model: how many records it predicted and how many
    failed alone, and the largest batch that fits in memory once one has not. Shared by every
    thread that calls the model, hence the lock."""

    predicted: int = 0
    failed_alone: int = 0
    fitting_batch: int | None = None  # None: no batch has run out of memory
    announced_batch: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_success(self, size: int) -> int | None:
        """Counts a successful call; returns the batch size to announce, if this call proved a new one."""
        with self.lock:
            self.predicted += size
            fitting = self.fitting_batch
            if fitting is not None and size == fitting and self.announced_batch != fitting:
                self.announced_batch = fitting
                return fitting
            return None

    def record_out_of_memory(self, size: int) -> None:
        with self.lock:
            half = max(1, size // 2)
            if self.fitting_batch is None or half < self.fitting_batch:
                self.fitting_batch = half

    def record_failure_alone(self) -> bool:
        """Counts a record that failed alone; True when the model now counts as broken."""
        with self.lock:
            self.failed_alone += 1
            return self.predicted == 0 and self.failed_alone >= BROKEN_AFTER


_HEALTH: dict[str, ModelHealth] = {}
_HEALTH_LOCK = threading.Lock()


def health_of(model_key: str) -> ModelHealth:
    """The process-wide health record of one model (by its path)."""
    with _HEALTH_LOCK:
        return _HEALTH.setdefault(model_key, ModelHealth())


def _announce_fitting_batch(model_key: str, size: int, tried: int | None) -> None:
    """Says once, on stderr and in the worker log, which batch size fits in memory."""
    message = (
        f"{model_key}: batches of {tried or 'more'} records ran out of memory; {size} records per model call "
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


class Scorer:
    """Scores InstanceBatches with `predict`, isolating the records it fails on.

    Returns ScoredBatches for what was predicted (possibly several per batch, in pieces) and a
    DeadLetter for each record that fails on its own, with the model's error for that record.
    """

    def __init__(self, predict: Predict, model_key: str, health: ModelHealth | None = None):
        self._predict = predict
        self._model_key = model_key
        self._health = health if health is not None else health_of(model_key)
        self._largest_tried: int | None = None

    def score(self, batch: InstanceBatch) -> list[ScoredBatch | DeadLetter]:
        results: list[ScoredBatch | DeadLetter] = []
        limit = self._health.fitting_batch
        if limit is None or len(batch) <= limit:
            self._score(batch, results)
        else:
            for start in range(0, len(batch), limit):
                self._score(batch.slice(start, start + limit), results)
        return results

    def _score(self, batch: InstanceBatch, results: list[ScoredBatch | DeadLetter]) -> bool:
        """Scores `batch` in one call, or isolates what fails in it; True if the one call succeeded."""
        try:
            outputs, version = self._predict(batch.features)
        except Exception as error:  # any error of the model's call: isolate, then judge
            self._after_failure(batch, error, results)
            return False
        results.append(ScoredBatch(batch, outputs, version))
        announce = self._health.record_success(len(batch))
        if announce is not None:
            _announce_fitting_batch(self._model_key, announce, self._largest_tried)
        return True

    def _after_failure(self, batch: InstanceBatch, error: Exception, results: list) -> None:
        size = len(batch)
        if size > 1:
            out_of_memory = is_out_of_memory(error)
            if out_of_memory:
                self._largest_tried = max(self._largest_tried or 0, size)
                self._health.record_out_of_memory(size)
            middle = size // 2
            left_scored = self._score(batch.slice(0, middle), results)
            right = batch.slice(middle, size)
            if left_scored and not out_of_memory and len(right) > 1:
                # The failing record is in the right half: split it without calling it whole (a call
                # that would fail). A lone record is still called, for its own error.
                self._after_failure(right, error, results)
            else:
                self._score(right, results)
            return
        results.append(_dead_letter(batch, error))
        if self._health.record_failure_alone():
            raise ModelBroken(
                f"the model failed on each of the first {BROKEN_AFTER} records it was given alone, and predicted "
                f"none: it is broken for this input, so the job stops. Its error: {error_line(error)}"
            ) from None


def _dead_letter(single: InstanceBatch, error: Exception) -> DeadLetter:
    """The dead letter of a record that failed alone: the model's own error for it."""
    kind = "ran out of memory on this record alone" if is_out_of_memory(error) else "failed on this record"
    rejection = Rejection(Reason.INFERENCE_FAILED, f"the model {kind}: {error_line(error)}"[:_MESSAGE_CHARS])
    stacktrace = "".join(traceback.format_exception(error))[-_STACKTRACE_CHARS:]
    return single.dead_letter(0, rejection, stacktrace, utc_now())
