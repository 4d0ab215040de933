"""Shared fixtures: sample data, the sample model, and tiny models of every format."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = [
    "tests.tools",  # gcloud, bq, the Pub/Sub emulator, Java: a skip without one, a failure where CI is set
    "tests.emulators",  # local GCS and BigQuery emulators (cloud_emulators fixture)
    "tests.launch_fixtures",  # fake metadata server and Dataflow API, the launch harness
    "tests.fault_fixtures",  # the emulators behind fault-injecting proxies, and the faults report
]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_IMAGES = SAMPLES / "mnist/images.txt.gz"
SAMPLE_LABELS = SAMPLES / "mnist/t10k-labels-idx1-ubyte.gz"
SAMPLE_MODEL = SAMPLES / "model"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def sample_lines() -> list[bytes]:
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        return handle.read().splitlines()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    # No tool (see tests/tools.py): a clone and Cloud Build's workspace never hold ../shared, so a skip in CI too.
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED} is absent: the project's shared data (seed files) lives beside the checkout")
    return SHARED


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Tiny models of every supported format, built once per session (see model_factories)."""
    from tests.model_factories import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def legacy_checkpoint(tmp_path_factory) -> Path:
    """The 2017 sample's own metagraph with the sample model's weights."""
    from scripts.legacy_checkpoint import write_legacy_checkpoint

    return write_legacy_checkpoint(tmp_path_factory.mktemp("legacy") / "export")


@pytest.fixture(scope="session")
def format_models(tmp_path_factory) -> dict[str, Path]:
    """Models fed by name, built once: `multi` (inputs of several dtypes, a None dimension, three
    outputs) and `examples` (one tf.string input of serialized tf.train.Examples)."""
    from tests.model_factories import example_parsing_saved_model, multi_input_saved_model

    folder = tmp_path_factory.mktemp("format-models")
    return {"multi": multi_input_saved_model(folder / "multi"), "examples": example_parsing_saved_model(folder / "ex")}


@pytest.fixture(scope="session")
def sample_scores() -> np.ndarray:
    """The sample model called directly (no pipeline) on every sample image: what predictions must equal."""
    import tensorflow as tf

    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        images = np.array([line.split(b":")[1].split(b",") for line in handle.read().splitlines()], dtype=np.float32)
    serve = tf.saved_model.load(str(SAMPLE_MODEL)).signatures["serving_default"]
    return np.concatenate(
        [
            serve(image=tf.constant(images[start : start + 1000].reshape(-1, 28, 28, 1)))["scores"].numpy()
            for start in range(0, len(images), 1000)
        ]
    )
