"""Inference with Beam's RunInference: our ModelHandler, and the transform that applies it.

Records reach the model already batched: the sources emit batches of up to `batch_size` records
so that decoding can be vectorised, and RunInference is told to skip its own batching.
RunInference still does what it is for: loading the model once per worker process and sharing
it across threads, metrics, and a dead-letter output for batches the model rejects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference import base as _inference_base
from apache_beam.ml.inference.base import ModelHandler, RunInference

from pipeline.batches import InstanceBatch, ScoredBatch
from pipeline.models import LoadedModel, load_model, predict_checked
from pipeline.records import DeadLetter, Reason, Rejection, utc_now
from pipeline.tensorflow_runtime import require_gpu


def _restore_memory_readings() -> None:
    """Beam 2.77 imports `resource` in one try block with an optional torch-only module, so without
    torch it believes `resource` is missing and warns on every model load ("Resource module is not
    available for current platform"). The module is there on every platform we run on: hand it back."""
    if getattr(_inference_base, "resource", None) is None:
        import resource

        _inference_base.resource = resource


_restore_memory_readings()


class InstanceBatchModelHandler(ModelHandler[InstanceBatch, ScoredBatch, LoadedModel]):
    """Loads a TensorFlow model of any supported format and calls it on InstanceBatches by input name.

    `shared_on_worker` makes RunInference keep one copy of the model per worker VM, shared by all
    its SDK processes, instead of one per process: what a GPU worker needs, its processes sharing
    one GPU's memory. (More copies would all land on the first GPU: TensorFlow places a model on
    the first GPU it sees, and copies are not pinned to devices.)
    """

    def __init__(self, model_path: str, outputs: tuple[str, ...], shared_on_worker: bool = False):
        super().__init__()
        self._model_path = model_path
        self._outputs = outputs
        self._shared_on_worker = shared_on_worker

    def load_model(self) -> LoadedModel:
        if self._shared_on_worker:
            require_gpu(self._model_path)
        return load_model(self._model_path)

    def run_inference(
        self, batch: InstanceBatch, model: LoadedModel, inference_args: dict[str, Any] | None = None
    ) -> Iterable[ScoredBatch]:
        return [ScoredBatch(batch, predict_checked(model, batch.features, self._outputs))]

    def get_num_bytes(self, batch: InstanceBatch) -> int:
        # The default pickles the whole batch just to measure it.
        return int(sum(array.nbytes for array in batch.features.values()))

    def should_skip_batching(self) -> bool:
        return True

    def share_model_across_processes(self) -> bool:
        return self._shared_on_worker

    def model_copies(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"InstanceBatchModelHandler({self._model_path!r})"


def failed_batch_dead_letters(failure: tuple[InstanceBatch, Sequence[Any]]) -> list[DeadLetter]:
    """One dead letter per instance of a batch the model raised on, with the error."""
    batch, (_, error_repr, trace_lines) = failure
    # The traceback's last entry is "Type: message" (some exceptions' repr drops the message);
    # it becomes one line, since TensorFlow's messages span many.
    error_text = " ".join(trace_lines[-1].split()) if trace_lines else error_repr
    rejection = Rejection(Reason.INFERENCE_FAILED, f"the model failed on this record's batch: {error_text}"[:2000])
    stacktrace = "".join(trace_lines)[-8000:]
    timestamp = utc_now()
    return [batch.dead_letter(index, rejection, stacktrace, timestamp) for index in range(len(batch))]


class Predict(beam.PTransform):
    """InstanceBatches in; ScoredBatches out, and dead letters for the instances of failed batches."""

    def __init__(self, handler: InstanceBatchModelHandler):
        super().__init__()
        self._handler = handler

    def expand(self, batches):
        scored, failures = batches | "RunInference" >> RunInference(self._handler).with_exception_handling()
        failed = failures.failed_inferences | "Dead-letter failed batches" >> beam.FlatMap(failed_batch_dead_letters)
        return scored, failed
