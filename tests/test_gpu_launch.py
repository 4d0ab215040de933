"""The GPU launch of docs/gpu.md, run as written by the real gcloud against the fake
Dataflow API, then launched the way the Flex Template launcher runs it, in the GPU image's layout
(TEMPLATE_VARIANT=gpu): the GPU and its machine type must reach the job that Dataflow would run.

The venv has TensorFlow's CPU packages only; what is checked here is the launch recipe and the
GPU image's layout and environment, not a GPU."""

from __future__ import annotations

import dataclasses

import pytest

from tests.cloud_shell import CloudShell
from tests.emulators import PROJECT
from tests.google_fakes import CapturedLaunch, check_launch_parameters
from tests.launch_fixtures import LAUNCH_BUCKET, TEMPLATE_METADATA
from tests.launcher import REGION, FlexTemplateLauncher, invocation_of
from tests.readme import commands_starting_with
from tests.tools import GCLOUD, requires_tool

pytestmark = [
    pytest.mark.emulators,
    pytest.mark.slow,
    requires_tool(GCLOUD is not None, "gcloud is not installed: the README's GPU launch cannot be run"),
]

GPU_SPEC = f"gs://{LAUNCH_BUCKET}/templates/batch-prediction-gpu.json"
GPU_IMAGE = "us-central1-docker.pkg.dev/test-project/dataflow/batch-prediction-gpu:4f2a9c1"
ACCELERATOR = "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"


GPU_LAUNCHES = commands_starting_with("gcloud dataflow flex-template run", containing="/batch-prediction-gpu.json")


@pytest.fixture(scope="module")
def shell(tmp_path_factory, dataflow_api) -> CloudShell:
    variables = {"PROJECT": PROJECT, "REGION": REGION, "BUCKET": LAUNCH_BUCKET}
    return CloudShell(tmp_path_factory.mktemp("cloudsdk-gpu"), dataflow_api, None, variables)


@pytest.fixture(scope="module")
def gpu_launcher(tmp_path_factory, gcs_emulator, metadata_server, dataflow_api, launch_bucket) -> FlexTemplateLauncher:
    work = tmp_path_factory.mktemp("gpu-launcher")
    return FlexTemplateLauncher(
        work,
        gcs_emulator,
        metadata_server,
        dataflow_api,
        template_image=GPU_IMAGE,
        build_args={"TEMPLATE_VARIANT": "gpu"},
    )


@pytest.fixture(scope="module")
def captured(shell) -> CapturedLaunch:
    (command,) = GPU_LAUNCHES
    return shell.send_launch(command)


def test_the_gpu_section_shows_one_launch_of_the_gpu_template():
    (command,) = GPU_LAUNCHES
    assert f'--additional-experiments="{ACCELERATOR}"' in command  # quoted: `;` would end the command
    assert "--template-file-gcs-location=gs://$BUCKET/templates/batch-prediction-gpu.json" in command


def test_the_gpu_launch_sends_the_accelerator_and_a_machine_type_that_takes_it(captured):
    assert captured.accepted
    assert (captured.project, captured.location) == (PROJECT, REGION)
    launch = captured.parameter
    assert launch["containerSpecGcsPath"] == GPU_SPEC
    assert launch["environment"]["additionalExperiments"] == [ACCELERATOR]
    assert launch["environment"]["machineType"] == "n1-standard-4"  # N1: the machine series a T4 attaches to
    assert check_launch_parameters(launch["parameters"], TEMPLATE_METADATA) == []


def test_the_gpu_launch_runs_in_template_mode_in_the_gpu_image(captured, gpu_launcher, launch_samples):
    environment, parameters = invocation_of(captured.parameter, captured.project, captured.location, LAUNCH_BUCKET)
    launch = gpu_launcher.launch(parameters, environment)
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == []
    assert launch.env["TEMPLATE_VARIANT"] == "gpu"
    job = gpu_launcher.read_json(environment.template_location)
    assert ACCELERATOR in job["environment"]["experiments"]
    (pool,) = job["environment"]["workerPools"]
    assert pool["machineType"] == "n1-standard-4"
    assert pool["workerHarnessContainerImage"] == GPU_IMAGE


def test_the_gpu_launch_shares_one_model_copy_per_worker(captured, gpu_launcher, launch_samples):
    """The job's RunInference keeps one copy of the model per worker, shared by its processes."""
    from apache_beam.internal import pickler
    from apache_beam.portability.api import beam_runner_api_pb2

    environment, parameters = invocation_of(captured.parameter, captured.project, captured.location, LAUNCH_BUCKET)
    environment = dataclasses.replace(environment, job_name="gpu-sharing", launch_id="gpu-sharing")
    assert gpu_launcher.launch(parameters, environment).returncode == 0
    options = gpu_launcher.read_json(environment.template_location)["environment"]["sdkPipelineOptions"]["options"]
    pipeline = beam_runner_api_pb2.Pipeline.FromString(gpu_launcher.gcs.local_path(options["pipelineUrl"]).read_bytes())
    (payload,) = [
        beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload).do_fn.payload
        for transform in pipeline.components.transforms.values()
        if transform.spec.urn == "beam:transform:pardo:v1"
        and transform.unique_name.endswith("RunInference/BeamML_RunInference")
    ]
    handler = pickler.loads(payload)[0]._model_handler
    assert handler.share_model_across_processes()


def test_the_cpu_image_refuses_gpu_workers_in_one_line(captured, launcher, launch_samples):
    environment, parameters = invocation_of(captured.parameter, captured.project, captured.location, LAUNCH_BUCKET)
    environment = dataclasses.replace(environment, job_name="gpu-on-cpu", launch_id="gpu-on-cpu")
    launch = launcher.launch(parameters, environment)
    assert launch.returncode == 2
    error = launch.stderr.strip().splitlines()[-1]
    assert error.startswith("error: worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver asks for GPU")
    assert "launch the GPU template" in error
