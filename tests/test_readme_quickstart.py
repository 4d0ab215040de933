"""The README's Dataflow quickstart, upload to output, run as written against the fakes:

* step 3's uploads by the real `gcloud storage` into the GCS emulator;
* step 5's launch sent by the real gcloud to the fake Dataflow API, and what it sent then run as a job
  (DirectRunner, in this process) on the objects step 3 uploaded: a model path or file name that the
  upload and the launch spell differently fails here;
* step 6's `gcloud dataflow jobs list` and `describe` on the fake Dataflow API;
* step 7's `gcloud storage ls` and `cat` on the job's output.
What only Dataflow itself does (workers, the job's state changing to done) needs a real project.
"""

from __future__ import annotations

import json

import pytest

from main import run
from tests.cloud_shell import CloudShell
from tests.emulators import CloudEmulators
from tests.readme import README, block_holding, commands_starting_with
from tests.tools import GCLOUD, requires_tool

pytestmark = [
    pytest.mark.emulators,
    pytest.mark.slow,
    requires_tool(GCLOUD is not None, "gcloud is not installed: the README's quickstart cannot be run"),
]

_README = README.read_text()
UPLOADS = commands_starting_with("gcloud storage cp", _README)
(LAUNCH,) = commands_starting_with("gcloud dataflow flex-template run", _README)
WATCH = block_holding("gcloud dataflow jobs describe", _README)
READ = commands_starting_with("gcloud storage ls gs://$BUCKET/out/", _README) + commands_starting_with(
    "gcloud storage cat", _README
)
N_IMAGES = 10_000


@pytest.fixture(scope="module")
def uploaded(cloud_shell: CloudShell, gcs_emulator, launch_bucket) -> None:
    bucket = gcs_emulator.client().bucket(launch_bucket)
    for blob in bucket.list_blobs(prefix="samples/"):  # a new project's bucket has none of it
        blob.delete()
    for command in UPLOADS:
        result = cloud_shell.run(command)
        assert result.returncode == 0, command + result.stderr


@pytest.fixture(scope="module")
def job_output(cloud_shell: CloudShell, cloud_emulators: CloudEmulators, uploaded, launch_bucket) -> str:
    """The launch gcloud sends for step 5, run as a job on what step 3 uploaded; the output prefix."""
    parameters = cloud_shell.send_launch(LAUNCH).parameter["parameters"]
    bucket = cloud_emulators.gcs.client().bucket(launch_bucket)
    for blob in bucket.list_blobs(prefix="out/"):
        blob.delete()
    assert run([f"--{name}={value}" for name, value in parameters.items()] + cloud_emulators.beam_options()) == 0
    return parameters["output"]


def test_step_3_uploads_the_sample_images_and_model(uploaded, gcs_emulator, launch_bucket):
    assert len(UPLOADS) == 2, UPLOADS
    names = {blob.name for blob in gcs_emulator.client().list_blobs(launch_bucket, prefix="samples/")}
    assert {"samples/images.txt.gz", "samples/model/saved_model.pb"} <= names, names


def test_step_5_launches_a_job_that_predicts_every_uploaded_image(job_output, cloud_emulators, launch_bucket):
    assert job_output == f"gs://{launch_bucket}/out/predictions"
    names = [blob.name for blob in cloud_emulators.gcs.client().list_blobs(launch_bucket, prefix="out/")]
    lines = [
        line
        for name in names
        if name.startswith("out/predictions-") and name.endswith(".jsonl")
        for line in cloud_emulators.gcs.client().bucket(launch_bucket).blob(name).download_as_text().splitlines()
    ]
    assert len(lines) == N_IMAGES


def test_step_6_finds_the_job_and_its_state(cloud_shell: CloudShell, job_output):
    assert len(WATCH) == 3, WATCH
    result = cloud_shell.run("\n".join(WATCH))  # one shell, as the README's block runs: JOB_ID carries over
    assert result.returncode == 0, result.stderr
    listed, state = result.stdout.splitlines()[:-1], result.stdout.splitlines()[-1]
    assert any("mnist-" in line for line in listed), result.stdout
    assert state.startswith("JOB_STATE_"), result.stdout


def test_step_7_shows_the_output_files_and_the_first_predictions(cloud_shell: CloudShell, job_output):
    listing, first_lines = READ
    result = cloud_shell.run(listing)
    assert result.returncode == 0, result.stderr
    assert any("/out/predictions-00000-of-" in line for line in result.stdout.splitlines()), result.stdout
    result = cloud_shell.run(first_lines)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3 and all({"key", "prediction", "confidence", "pred0", "pred9"} <= set(row) for row in rows)
