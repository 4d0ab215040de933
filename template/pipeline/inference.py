"""Inference with Beam's RunInference: our ModelHandler, and the transform that applies it.

Records reach the model already batched: the sources emit lists of up to `batch_size` records
so that parsing can be vectorised, and RunInference is told to skip its own batching.
RunInference still does what it is for: loading the model once per worker process and sharing
it across threads, metrics, and a dead-letter output for batches the model rejects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference import base as _inference_base
from apache_beam.ml.inference.base import ModelHandler, RunInference

from pipeline.models import LoadedModel, load_model, predict_checked
from pipeline.records import DeadLetter, ImageBatch, Reason, ScoredBatch, split_non_finite_scores, utc_now


def _restore_memory_readings() -> None:
    """Beam 2.77 imports `resource` in one try block with an optional torch-only module, so without
    torch it believes `resource` is missing and warns on every model load ("Resource module is not
    available for current platform"). The module is there on every platform we run on: hand it back."""
    if getattr(_inference_base, "resource", None) is None:
        import resource

        _inference_base.resource = resource


_restore_memory_readings()


class ImageBatchModelHandler(ModelHandler[ImageBatch, ScoredBatch, LoadedModel]):
    """Loads a TensorFlow model of any supported format and scores ImageBatches."""

    def __init__(self, model_path: str):
        super().__init__()
        self._model_path = model_path

    def load_model(self) -> LoadedModel:
        return load_model(self._model_path)

    def run_inference(
        self, batch: ImageBatch, model: LoadedModel, inference_args: dict[str, Any] | None = None
    ) -> Iterable[ScoredBatch]:
        scores = predict_checked(model, batch.images, batch.keys)
        return [ScoredBatch(batch.keys, scores, batch.records)]

    def get_num_bytes(self, batch: ImageBatch) -> int:
        # The default pickles the whole batch just to measure it.
        return int(batch.images.nbytes + batch.keys.nbytes)

    def should_skip_batching(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ImageBatchModelHandler({self._model_path!r})"


def failed_batch_dead_letters(failure: tuple[ImageBatch, Sequence[Any]]) -> list[DeadLetter]:
    """One dead letter per record of a batch the model raised on, with the error."""
    batch, (_, error_repr, trace_lines) = failure
    # The traceback's last entry is "Type: message" (some exceptions' repr drops the message);
    # it becomes one line, since TensorFlow's messages span many.
    error_text = " ".join(trace_lines[-1].split()) if trace_lines else error_repr
    message = f"the model failed on this record's batch: {error_text}"
    stacktrace = "".join(trace_lines)
    timestamp = utc_now()
    return [
        DeadLetter(
            record.origin, record.payload, Reason.INFERENCE_FAILED, message[:2000], stacktrace[-8000:], timestamp
        )
        for record in batch.records
    ]


_NON_FINITE = "non_finite"


def _set_aside_non_finite_scores(scored: ScoredBatch):
    kept, dead_letters = split_non_finite_scores(scored)
    if kept is not None:
        yield kept
    for dead_letter in dead_letters:
        yield beam.pvalue.TaggedOutput(_NON_FINITE, dead_letter)


class Predict(beam.PTransform):
    """ImageBatches in; ScoredBatches out, and dead letters for the records of failed batches
    and for records the model scored NaN or infinite."""

    def __init__(self, handler: ImageBatchModelHandler):
        super().__init__()
        self._handler = handler

    def expand(self, batches):
        scored, failures = batches | "RunInference" >> RunInference(self._handler).with_exception_handling()
        failed = failures.failed_inferences | "Dead-letter failed batches" >> beam.FlatMap(failed_batch_dead_letters)
        finite, non_finite = scored | "Set aside non-finite scores" >> beam.FlatMap(
            _set_aside_non_finite_scores
        ).with_outputs(_NON_FINITE, main="finite")
        dead_letters = (failed, non_finite) | "Gather model dead letters" >> beam.Flatten()
        return finite, dead_letters
