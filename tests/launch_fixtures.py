"""Pytest fixtures for launches: the fake GCE metadata server and Dataflow API, a bucket on the GCS
emulator holding the sample data and model, and a FlexTemplateLauncher over all of them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud_shell import CloudShell
from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL
from tests.emulators import PROJECT, GcsEmulator
from tests.google_fakes import FakeDataflowApi, FakeMetadataServer
from tests.launcher import REGION, FlexTemplateLauncher

LAUNCH_BUCKET = "launches"
TEMPLATE_IMAGE = "us-central1-docker.pkg.dev/test-project/dataflow/batch-prediction:4f2a9c1"
TEMPLATE_METADATA = json.loads((ROOT / "metadata.json").read_text())
STREAMING_TEMPLATE_METADATA = json.loads((ROOT / "metadata-streaming.json").read_text())


def upload(gcs: GcsEmulator, local: Path, name: str, bucket: str = LAUNCH_BUCKET) -> str:
    """Uploads a file, or a folder's files, as gs://<bucket>/<name>[/...]; returns that URI."""
    target = gcs.client().bucket(bucket)
    if local.is_file():
        target.blob(name).upload_from_filename(str(local))
    for path in sorted(local.rglob("*")) if local.is_dir() else ():
        if path.is_file():
            target.blob(f"{name}/{path.relative_to(local)}").upload_from_filename(str(path))
    return f"gs://{bucket}/{name}"


@pytest.fixture(scope="session")
def metadata_server() -> Iterator[FakeMetadataServer]:
    with FakeMetadataServer(PROJECT) as server:
        yield server


@pytest.fixture(scope="session")
def dataflow_api() -> Iterator[FakeDataflowApi]:
    with FakeDataflowApi(TEMPLATE_METADATA, STREAMING_TEMPLATE_METADATA) as api:
        yield api


@pytest.fixture(scope="session")
def launch_bucket(gcs_emulator: GcsEmulator) -> str:
    from google.api_core.exceptions import Conflict

    with contextlib.suppress(Conflict):
        gcs_emulator.create_bucket(LAUNCH_BUCKET)
    return LAUNCH_BUCKET


@pytest.fixture(scope="session")
def launch_samples(gcs_emulator: GcsEmulator, launch_bucket: str) -> dict[str, str]:
    """The sample data and model where the README's step 3 puts them: gs://BUCKET/samples/."""
    return {
        "images": upload(gcs_emulator, SAMPLE_IMAGES, "samples/images.txt.gz"),
        "model": upload(gcs_emulator, SAMPLE_MODEL, "samples/model"),
    }


@pytest.fixture(scope="session")
def launcher(
    tmp_path_factory, gcs_emulator, bigquery_emulator, metadata_server, dataflow_api, launch_bucket
) -> FlexTemplateLauncher:
    return FlexTemplateLauncher(
        tmp_path_factory.mktemp("launcher"),
        gcs_emulator,
        metadata_server,
        dataflow_api,
        bigquery_emulator,
        template_image=TEMPLATE_IMAGE,
    )


@pytest.fixture(scope="session")
def streaming_shell(tmp_path_factory, dataflow_api, pubsub_emulator, gcs_emulator, launch_bucket) -> CloudShell:
    """bash with gcloud on the fake Dataflow API, the Pub/Sub and GCS emulators; the README's variables set."""
    variables = {"PROJECT": PROJECT, "REGION": REGION, "BUCKET": launch_bucket}
    return CloudShell(
        tmp_path_factory.mktemp("cloudsdk-stream"), dataflow_api, None, variables, pubsub_emulator, gcs=gcs_emulator
    )


@pytest.fixture(scope="session")
def cloud_shell(tmp_path_factory, dataflow_api, bigquery_emulator, gcs_emulator, launch_bucket) -> CloudShell:
    """bash with gcloud and bq on the fakes (gcloud storage on the GCS emulator); the README's variables set to
    the fakes' project and bucket."""
    variables = {"PROJECT": PROJECT, "REGION": REGION, "BUCKET": launch_bucket}
    return CloudShell(tmp_path_factory.mktemp("cloudsdk"), dataflow_api, bigquery_emulator, variables, gcs=gcs_emulator)
