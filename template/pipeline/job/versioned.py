"""Scoring with the version a ServedModel serves, and judging a new version on probation against its predecessor.

A new version serves from the call after it loads, but its predecessor stays loaded until it has
predicted `PROBATION_RECORDS` records, or some over `PROBATION_S` (a slow stream). Until then, the
records it fails on alone are tried on the predecessor: if the predecessor predicts any of them,
the new version is the fault, not the records, so it is rolled back and the whole batch is scored
by the predecessor (a batch is never scored by a mix of versions). If the predecessor fails on
them too, they are bad records. A new version whose runtime fails (`ModelFault`) where its
predecessor's does not is rolled back too: a stream must not be left retrying a work item that
only the new version fails.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.config import DEFAULT_MAX_FAILURE_SHARE
from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.errors import ModelFault
from pipeline.job.isolation import FailedRecord, Scorer, as_dead_letters, error_line
from pipeline.model.versions import ServedModel, Version

# Checks one call's outputs: the output names, and one row per instance.
CheckOutputs = Callable[[dict[str, np.ndarray], int], dict[str, np.ndarray]]


class VersionedScorer:
    """Scores batches on a ServedModel's serving version, isolating bad records (`job.isolation`).

    Holds no model: it is handed to `ServedModel.run`, so that where the model lives in another process
    (one copy per worker VM, behind Beam's proxy) the scoring runs there and only data crosses over."""

    def __init__(
        self,
        check: CheckOutputs,
        model_key: str,
        *,
        stop_when_broken: bool = True,
        max_failure_share: float = DEFAULT_MAX_FAILURE_SHARE,
    ):
        self._check = check
        self._model_key = model_key
        self._stop_when_broken = stop_when_broken
        self._max_failure_share = max_failure_share

    def score(self, served: ServedModel, batch: InstanceBatch) -> list[ScoredBatch | DeadLetter]:
        serving, predecessor = served.serving()
        if predecessor is None:
            return as_dead_letters(self._scorer(serving).attempt(batch))
        return as_dead_letters(self._on_probation(served, batch, serving, predecessor))

    def _on_probation(
        self, served: ServedModel, batch: InstanceBatch, candidate: Version, predecessor: Version
    ) -> list[ScoredBatch | FailedRecord]:
        try:
            results = self._scorer(candidate, judging=False).attempt(batch)
        except ModelFault as fault:  # the new version's runtime fails: the old one may not
            rescored = self._scorer(predecessor).attempt(batch)  # a fault here too is the device's: it escapes
            served.roll_back(candidate, f"its runtime failed where version {predecessor.number} did not ({fault})")
            return rescored
        failed = [item for item in results if isinstance(item, FailedRecord)]
        for record in failed:
            retried = self._scorer(predecessor, judging=False).attempt(record.single)
            if any(isinstance(item, ScoredBatch) for item in retried):
                served.roll_back(
                    candidate,
                    f"it failed on a record that version {predecessor.number} predicted ({error_line(record.error)})",
                )
                return self._scorer(predecessor).attempt(batch)
        if candidate.passed_probation():
            served.confirm(candidate)
        return results

    def _scorer(self, version: Version, judging: bool = True) -> Scorer:
        """A Scorer for one version: its calls, its health; a version on probation is judged here, not there."""

        def predict(features: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
            outputs = version.model.predict(features)
            return self._check(outputs, len(next(iter(features.values())))), version.number

        return Scorer(
            predict,
            self._model_key,
            version.health,
            stop_when_broken=self._stop_when_broken and judging,
            max_failure_share=self._max_failure_share if judging else 1.0,
        )
