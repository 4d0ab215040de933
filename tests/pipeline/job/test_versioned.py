"""A new version on probation: rolled back when it fails records its predecessor predicts, kept when the
records are bad for both, and let go of its predecessor once it has predicted enough."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.errors import ModelBroken
from pipeline.job import isolation
from pipeline.job.versioned import VersionedScorer
from pipeline.model import versions
from pipeline.model.loading import checked_outputs, load_model
from pipeline.model.versions import ServedModel
from tests.model_factories import (
    WIDTH,
    data_loss_saved_model,
    failing_saved_model,
    sharpened_saved_model,
    sharpened_scores,
)


def batch_of(images: np.ndarray) -> InstanceBatch:
    source = RecordBatch("in.txt", 1, [f"{key}:...".encode() for key in range(len(images))])
    return InstanceBatch(np.arange(len(images), dtype=np.int64), {"image": images}, source, np.arange(len(images)))


def check(outputs, count):
    return checked_outputs(outputs, count, ("scores",))


@pytest.fixture
def folder(tmp_path):
    sharpened_saved_model(tmp_path / "model" / "1", 1.0)
    return tmp_path / "model"


def served_with_new(folder, make_new) -> ServedModel:
    served = ServedModel(str(folder), load_model(str(folder / "1")).get_signature(), poll_s=None)
    make_new(folder / "2")
    served.poll()
    assert served.poll() == 2
    return served


def test_a_new_version_that_fails_records_its_predecessor_predicts_is_rolled_back(folder, caplog):
    served = served_with_new(folder, lambda path: failing_saved_model(path, limit=0.5))  # fails most images
    images = np.random.default_rng(3).random((64, WIDTH), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="pipeline.model.versions"):
        results = VersionedScorer(check, "m").score(served, batch_of(images))
    assert not [item for item in results if isinstance(item, DeadLetter)]
    scored = [item for item in results if isinstance(item, ScoredBatch)]
    assert {batch.model_version for batch in scored} == {1}  # the whole batch, by the predecessor
    for batch in scored:
        np.testing.assert_allclose(
            batch.outputs["scores"], sharpened_scores(images[batch.instances.keys], 1.0), atol=1e-5
        )
    assert served.serving()[1] is None and served.version == 1
    said = " ".join(record.getMessage() for record in caplog.records)
    assert "version 2 is rolled back: it failed on a record that version 1 predicted" in said
    assert served.poll() == 1  # refused until its files change


def test_a_new_version_whose_runtime_fails_where_its_predecessors_does_not_is_rolled_back(folder, monkeypatch):
    monkeypatch.setattr(isolation, "FAULT_BACKOFF_S", 0.0)
    served = served_with_new(folder, data_loss_saved_model)  # its own data damaged: DataLossError on every call
    images = np.random.default_rng(2).random((16, WIDTH), dtype=np.float32)
    results = VersionedScorer(check, "m").score(served, batch_of(images))
    assert {item.model_version for item in results} == {1} and served.version == 1
    assert served.poll() == 1  # refused until its files change: the stream does not retry it forever


def test_records_bad_for_both_versions_are_dead_letters_and_the_new_version_stays(folder):
    served = served_with_new(folder, lambda path: sharpened_saved_model(path, 3.0))
    too_narrow = np.random.default_rng(4).random((8, WIDTH - 1), dtype=np.float32)  # no version takes these
    bad = batch_of(too_narrow)
    results = VersionedScorer(check, "m").score(served, bad)
    assert all(isinstance(item, DeadLetter) for item in results) and len(results) == 8
    assert served.version == 2 and served.serving()[1] is not None


def test_a_new_version_passes_probation_once_it_has_predicted_enough_records(folder, monkeypatch):
    monkeypatch.setattr(versions, "PROBATION_RECORDS", 100)
    served = served_with_new(folder, lambda path: sharpened_saved_model(path, 3.0))
    scorer = VersionedScorer(check, "m")
    images = np.random.default_rng(5).random((60, WIDTH), dtype=np.float32)
    served.run(scorer.score, batch_of(images))
    assert served.serving()[1] is not None
    results = served.run(scorer.score, batch_of(images))
    assert served.serving()[1] is None and {item.model_version for item in results} == {2}


def test_an_unversioned_model_keeps_the_batch_rule_of_stopping_when_broken(tmp_path):
    path = failing_saved_model(tmp_path / "broken", limit=0.0)  # fails on everything
    served = ServedModel(str(path), load_model(str(path)).get_signature())
    images = np.random.default_rng(6).random((150, WIDTH), dtype=np.float32) + 0.1
    with pytest.raises(ModelBroken):
        VersionedScorer(check, "m").score(served, batch_of(images))
    results = VersionedScorer(check, "m", stop_when_broken=False).score(served, batch_of(images))
    assert len(results) == 150 and all(isinstance(item, DeadLetter) for item in results)
