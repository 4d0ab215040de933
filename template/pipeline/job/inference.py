"""Inference with Beam's RunInference: our ModelHandler, and the transform that applies it.

Records reach the model already batched: the sources emit batches of up to `batch_size` records
so that decoding can be vectorised, and RunInference is told to skip its own batching.
RunInference still does what it is for: loading the model once per worker process (or once per
worker VM, served to its processes, for a large model: `launch.model_memory`) and sharing it across
threads, and its metrics. A failing model call is not a failing batch: the handler
scores each batch through `job.versioned` and `job.isolation`, which dead-letter only the records
the model fails on alone, hand a runtime fault back to the runner, and stop a batch job whose
model fails on too many records (a stream goes on).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from pipeline.compat import restore_memory_readings
from pipeline.config import DEFAULT_MAX_FAILURE_SHARE
from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.job.tags import DEAD_LETTERS
from pipeline.job.versioned import VersionedScorer
from pipeline.model.files import DEFAULT_SIGNATURE
from pipeline.model.loading import checked_outputs, load_model
from pipeline.model.runtime import require_gpu
from pipeline.model.signatures import ModelSignature
from pipeline.model.versions import ServedModel, locate_served, serve

restore_memory_readings()


class InstanceBatchModelHandler(ModelHandler[InstanceBatch, ScoredBatch, ServedModel]):
    """Loads a TensorFlow model of any supported format and calls it on InstanceBatches by input name.

    A versioned model folder serves its highest version; with `poll_s`, a higher version that
    appears while the job runs serves from the next call on, if its signature is still `signature`.

    `shared_on_worker` makes RunInference keep one copy of the model per worker VM, shared by all
    its SDK processes, instead of one per process: what a model too large for a copy in each process
    needs (`launch.model_memory` decides), and what a GPU worker needs, its processes sharing one GPU's
    memory. (More copies would all land on the first GPU: TensorFlow places a model on the first GPU it
    sees, and copies are not pinned to devices.) `gpu` refuses to load the model where no GPU is seen.
    """

    def __init__(
        self,
        model_path: str,
        outputs: tuple[str, ...],
        shared_on_worker: bool = False,
        gpu: bool = False,
        signature: ModelSignature | None = None,
        poll_s: float | None = None,
        signature_name: str = DEFAULT_SIGNATURE,
        streaming: bool = False,
        max_failure_share: float = DEFAULT_MAX_FAILURE_SHARE,
    ):
        super().__init__()
        # Travels with the handler's pickle: its copies in one process serve one model, another handler its own.
        self._owner = uuid.uuid4().hex
        self._streaming = streaming
        self._max_failure_share = max_failure_share
        self._model_path = model_path
        self._outputs = outputs
        self._shared_on_worker = shared_on_worker
        self._gpu = gpu
        self._signature = signature
        self._poll_s = poll_s
        self._signature_name = signature_name

    def load_model(self) -> ServedModel:
        if self._gpu:
            require_gpu(self._model_path)
        location, _ = locate_served(self._model_path, self._signature_name)
        signature = self._signature or load_model(location.path, location).get_signature()
        return serve(self._model_path, signature, self._poll_s, self._signature_name, owner=self._owner)

    def run_inference(  # type: ignore[override]  # batching skipped: Beam passes each element whole
        self, batch: InstanceBatch, model: ServedModel, inference_args: dict[str, Any] | None = None
    ) -> Iterable[ScoredBatch | DeadLetter]:
        """The batch scored in one call or, when that fails, in pieces: ScoredBatches for what the
        model predicted and a DeadLetter for each record it failed on alone."""

        scorer = VersionedScorer(
            functools.partial(checked_outputs, names=self._outputs),
            self._model_path,
            stop_when_broken=not self._streaming,
            max_failure_share=self._max_failure_share,
        )
        return model.run(scorer.score, batch)

    def get_num_bytes(self, batch: InstanceBatch) -> int:  # type: ignore[override]  # as run_inference
        # The default pickles the whole batch just to measure it.
        return int(sum(array.nbytes for array in batch.features.values()))

    def should_skip_batching(self) -> bool:
        return True

    def share_model_across_processes(self) -> bool:
        return self._shared_on_worker

    def __repr__(self) -> str:
        return f"InstanceBatchModelHandler({self._model_path!r})"


class _SplitFailuresFn(beam.DoFn):
    def process(self, result: ScoredBatch | DeadLetter):
        if isinstance(result, DeadLetter):
            yield beam.pvalue.TaggedOutput(DEAD_LETTERS, result)
        else:
            yield result


class Predict(beam.PTransform):
    """InstanceBatches in; ScoredBatches out, and a dead letter for each record the model failed on alone.

    No exception handling around RunInference: the handler isolates the records a model call fails
    on, so what still escapes it (a broken model, a bug) must stop the job, not become dead letters.
    """

    def __init__(self, handler: InstanceBatchModelHandler):
        super().__init__()
        self._handler = handler

    def expand(self, batches):
        results = batches | "RunInference" >> RunInference(self._handler)
        split = results | "Split failures" >> beam.ParDo(_SplitFailuresFn()).with_outputs(DEAD_LETTERS, main="scored")
        return split.scored, split[DEAD_LETTERS]
