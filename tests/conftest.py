"""Shared fixtures: sample data, the sample model, and tiny models of every format."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

pytest_plugins = [
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
