"""Versioned model folders: the highest version that fits serves, a higher one is switched to by the poll,
one that no longer fits is refused once, and a model that is not versioned serves as it is."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.model import versions
from pipeline.model.loading import load_model
from pipeline.model.versions import READY_MARKER, ServedModel, fits, locate_served, serve, version_folders
from tests.model_factories import WIDTH, reference_scores, sharpened_saved_model, sharpened_scores

IMAGES = np.random.default_rng(9).random((4, WIDTH), dtype=np.float32)


@pytest.fixture
def folder(tmp_path):
    versions = tmp_path / "model"
    versions.mkdir()
    sharpened_saved_model(versions / "1", 1.0)
    (versions / "notes").mkdir()  # not a number: not a version
    (versions / "notes" / "README").write_text("release notes")
    return versions


def scored_by(served: ServedModel, features: dict) -> tuple[int | None, dict]:
    """The version serving now, and its outputs for `features`: what one model call of the job gets."""
    version, _ = served.serving()
    return version.number, version.model.predict(features)


def signature_of(path) -> object:
    return load_model(str(path)).get_signature()


def test_numbered_folders_are_versions_and_the_highest_serves(folder):
    sharpened_saved_model(folder / "10", 2.0)
    assert sorted(version_folders(str(folder))) == [1, 10]  # numbers, not text: 10 > 9 > 1
    location, version = locate_served(str(folder))
    assert version == 10 and location.path.endswith("/10")


def test_a_model_that_is_not_a_versioned_folder_serves_as_it_is(tiny_models):
    location, version = locate_served(str(tiny_models["saved_model_flat"]))
    assert version is None and location.path == str(tiny_models["saved_model_flat"])
    served = ServedModel(str(tiny_models["saved_model_flat"]), signature_of(tiny_models["saved_model_flat"]), 1)
    version, outputs = scored_by(served, {"image": IMAGES})
    assert version is None
    np.testing.assert_allclose(outputs["scores"], reference_scores(IMAGES), atol=1e-5)


def test_a_folder_with_no_model_and_no_versions_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    with pytest.raises(ModelError, match="not a SavedModel directory"):
        locate_served(str(tmp_path / "empty"))


def test_a_poll_switches_to_a_higher_version_and_each_call_says_which_version_scored(folder):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    assert scored_by(served, {"image": IMAGES})[0] == 1
    assert served.poll() == 1  # nothing new
    sharpened_saved_model(folder / "2", 3.0)
    assert served.poll() == 1  # first seen: it may still be being copied
    assert served.poll() == 2  # the same files a poll later: whole
    version, outputs = scored_by(served, {"image": IMAGES})
    assert version == 2
    np.testing.assert_allclose(outputs["scores"], sharpened_scores(IMAGES, 3.0), atol=1e-5)


def test_a_version_that_no_longer_fits_is_refused_once_and_the_old_one_serves_on(folder, tiny_models, caplog):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    shutil.copytree(tiny_models["saved_model_shaped"], folder / "2")
    with caplog.at_level(logging.WARNING, logger="pipeline.model.versions"):
        assert served.poll() == 1
        assert served.poll() == 1
    refusals = [record.getMessage() for record in caplog.records]
    assert len(refusals) == 1 and "version 2 is refused" in refusals[0] and "version 1 serves on" in refusals[0]


def test_at_start_the_highest_version_that_fits_serves(folder, tiny_models):
    sharpened_saved_model(folder / "2", 3.0)
    shutil.copytree(tiny_models["saved_model_shaped"], folder / "3")  # written after the launch looked
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    assert served.version == 2


def test_signatures_fit_by_names_dtypes_and_shapes(folder, tiny_models):
    assert fits(signature_of(folder / "1"), signature_of(tiny_models["saved_model_flat"]))
    assert not fits(signature_of(tiny_models["saved_model_shaped"]), signature_of(folder / "1"))


def test_an_owner_serves_one_model_per_path_and_another_owner_its_own(folder):
    first = serve(str(folder), signature_of(folder / "1"), owner="handler-a")
    assert serve(str(folder), signature_of(folder / "1"), owner="handler-a") is first
    other = serve(str(folder), signature_of(folder / "1"), owner="handler-b")
    assert other is not first and other.serving()[0].health is not first.serving()[0].health


def half_copied(folder, source) -> None:
    """A SavedModel folder as a copy leaves it midway: the graph there, the weights not yet."""
    shutil.copytree(source, folder)
    shutil.rmtree(folder / "variables")


def test_a_worker_that_starts_while_the_highest_version_is_half_copied_serves_the_highest_whole_one(folder, caplog):
    sharpened_saved_model(folder / "2", 3.0)
    half_copied(folder / "3", folder / "2")
    with caplog.at_level(logging.WARNING, logger="pipeline.model.versions"):
        served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    assert served.version == 2
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "version 3 does not load (try 1 of 3), a lower version serves" in said[0]
    assert served.poll() == 2  # a one-off fault at start is tried again, as at any poll, up to LOAD_TRIES
    shutil.rmtree(folder / "3")
    sharpened_saved_model(folder / "3", 4.0)  # the copy finished
    served.poll()
    assert served.poll() == 3


def test_a_version_being_copied_is_left_alone_until_its_files_settle_then_serves(folder):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    half_copied(folder / "2", folder / "1")
    assert served.poll() == 1  # first seen
    shutil.rmtree(folder / "2")
    sharpened_saved_model(folder / "2", 3.0)  # the copy goes on: other files
    assert served.poll() == 1  # changed since the last look: not tried
    assert served.poll() == 2


def test_a_version_that_keeps_failing_to_load_is_refused_after_its_tries_until_its_files_change(
    folder, monkeypatch, caplog
):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    half_copied(folder / "2", folder / "1")  # a copy that stopped midway
    loads = []
    real_load = versions.load_model
    monkeypatch.setattr(versions, "load_model", lambda *args: loads.append(args) or real_load(*args))
    with caplog.at_level(logging.WARNING, logger="pipeline.model.versions"):
        for _ in range(versions.LOAD_TRIES + 4):
            assert served.poll() == 1
    assert len(loads) == versions.LOAD_TRIES  # bounded: not downloaded again at every poll
    said = [record.getMessage() for record in caplog.records]
    assert sum("is refused" in line for line in said) == 1
    shutil.rmtree(folder / "2")
    sharpened_saved_model(folder / "2", 3.0)  # the copy finished: tried again
    served.poll()
    assert served.poll() == 2


def test_once_a_version_holds_the_ready_marker_only_marked_versions_serve_and_at_once(folder):
    (folder / "1" / READY_MARKER).write_text("")
    sharpened_saved_model(folder / "5", 5.0)  # no marker: still being copied
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    assert served.version == 1 and sorted(version_folders(str(folder))) == [1]
    (folder / "5" / READY_MARKER).write_text("")
    assert served.poll() == 5  # marked whole: no need to wait for a second look


def test_a_new_version_starts_with_health_of_its_own_and_keeps_its_predecessor_on_probation(folder):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    first, _ = served.serving()
    first.health.record_success(10)
    sharpened_saved_model(folder / "2", 3.0)
    served.poll()
    served.poll()
    second, predecessor = served.serving()
    assert second.number == 2 and predecessor is first and second.health.predicted == 0
    served.confirm(second)
    assert served.serving() == (second, None)


def test_a_probation_ends_after_enough_records_or_after_its_time_once_the_version_has_predicted(folder):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    version, _ = served.serving()
    assert not version.passed_probation(now=version.loaded_at + versions.PROBATION_S)  # predicted nothing yet
    version.health.record_success(1)
    assert not version.passed_probation(now=version.loaded_at + 1)
    assert version.passed_probation(now=version.loaded_at + versions.PROBATION_S + 1)  # not exactly: float sums round
    version.health.record_success(versions.PROBATION_RECORDS)
    assert version.passed_probation(now=version.loaded_at)
