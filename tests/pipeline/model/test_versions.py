"""Versioned model folders: the highest version that fits serves, a higher one is switched to by the poll,
one that no longer fits is refused once, and a model that is not versioned serves as it is."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.model.loading import load_model
from pipeline.model.versions import ServedModel, fits, locate_served, serve, version_folders
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
    version, outputs = served.predict_versioned({"image": IMAGES})
    assert version is None
    np.testing.assert_allclose(outputs["scores"], reference_scores(IMAGES), atol=1e-5)


def test_a_folder_with_no_model_and_no_versions_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("x")
    with pytest.raises(ModelError, match="not a SavedModel directory"):
        locate_served(str(tmp_path / "empty"))


def test_a_poll_switches_to_a_higher_version_and_each_call_says_which_version_scored(folder):
    served = ServedModel(str(folder), signature_of(folder / "1"), poll_s=None)
    assert served.predict_versioned({"image": IMAGES})[0] == 1
    assert served.poll() == 1  # nothing new
    sharpened_saved_model(folder / "2", 3.0)
    assert served.poll() == 2
    version, outputs = served.predict_versioned({"image": IMAGES})
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


def test_a_process_serves_one_model_per_path(folder):
    first = serve(str(folder), signature_of(folder / "1"))
    assert serve(str(folder), signature_of(folder / "1")) is first
