"""Where and how the job runs: a local runner, a service such as Dataflow, or template mode.

* Local (DirectRunner, Prism, ...): wait for the job and print a summary.
* Submit (DataflowRunner): submit the job, print its id and console URL, return at once.
* Template (DataflowRunner with --template_location, how the Flex Template launcher runs
  main.py): Beam writes the job object there and the launcher submits it; return at once.

Workers of a service runner need this template's code. In the template's container image the
image's own name is baked in (TEMPLATE_IMAGE, set at build time), so that Dataflow workers run
the very image the launcher runs, with the same code and the same locked packages, unless the
user chose another `sdk_container_image`. Nothing else is staged: no pickled main session, no
package list, no requirements (the image has everything).
"""

from __future__ import annotations

import enum
import os
import re

from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineRunner

from pipeline.errors import LaunchError
from pipeline.model.runtime import TEMPLATE_VARIANT_VARIABLE

TEMPLATE_IMAGE_VARIABLE = "TEMPLATE_IMAGE"
_LOCAL_RUNNERS = {
    "directrunner",
    "switchingdirectrunner",
    "bundlebaseddirectrunner",
    "fnapirunner",
    "prismrunner",
    "interactiverunner",
    "testdirectrunner",
}


def runner_name(options: PipelineOptions) -> str:
    """The runner's class name in lower case, however it was given (`prism`, `DirectRunner`, a dotted path)."""
    runner = options.view_as(StandardOptions).runner
    if not runner:
        return "directrunner"  # Beam's default
    name = runner if isinstance(runner, str) else type(runner).__name__
    name = name.rsplit(".", 1)[-1].lower()
    return name if name.endswith("runner") else name + "runner"  # as Beam's create_runner completes it


def is_local(options: PipelineOptions) -> bool:
    return runner_name(options) in _LOCAL_RUNNERS


def local_batch_runner(options: PipelineOptions, streaming: bool) -> PipelineRunner | None:
    """The runner of a local batch job where the DirectRunner was asked for (or no runner): Beam's FnApiRunner,
    set up as the DirectRunner sets it up when it falls back to it; None otherwise (Beam then creates the
    runner named). Beam 2.77's DirectRunner first tries Prism, downloading its binary from GitHub where the
    network allows (a run-time fetch, then a runner in another process that cannot reuse the model loaded at
    launch), and where it does not, spends a failed attempt on it before every local job."""
    if streaming or runner_name(options) not in ("directrunner", "switchingdirectrunner"):
        return None
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=provision)


class LaunchMode(enum.Enum):
    LOCAL = "local"
    SUBMIT = "submit"
    TEMPLATE = "template"


def launch_mode(options: PipelineOptions) -> LaunchMode:
    if is_local(options):
        return LaunchMode.LOCAL
    if (options.view_as(GoogleCloudOptions).template_location or "").strip():
        return LaunchMode.TEMPLATE
    return LaunchMode.SUBMIT


# Beam stages the output of `pip freeze` for every job unless this experiment is set; workers
# run the launcher's own image, so the list could only ever match, and `pip freeze` costs a second.
NO_SUBMISSION_ENVIRONMENT = "disable_logging_submission_environment"


DEFAULT_REGION = "us-central1"


def default_region(options: PipelineOptions) -> list[str]:
    """Sets --region to Dataflow's default when it is missing (the 2017 sample's commands pass none);
    returns a note saying so, or nothing."""
    cloud = options.view_as(GoogleCloudOptions)
    if (cloud.region or "").strip():
        return []
    cloud.region = DEFAULT_REGION
    return [f"note: --region is not set: the job runs in {DEFAULT_REGION}, Dataflow's default; pass --region to choose"]


def prepare_remote_launch(options: PipelineOptions, environ=os.environ) -> str:
    """Chooses the workers' image and stages nothing but the pipeline; returns the image.

    Refuses (LaunchError) when no image holds this template's code: Beam's stock worker image
    lacks the `pipeline` package, and such a job would fail on its first bundle instead.
    """
    worker = options.view_as(WorkerOptions)
    if not (worker.sdk_container_image or "").strip():
        image = environ.get(TEMPLATE_IMAGE_VARIABLE, "").strip()
        if not image:
            raise LaunchError(
                "no worker image: this image was built without TEMPLATE_IMAGE (cloudbuild.yaml passes it), and "
                "Beam's stock image lacks the template's code; rebuild with --build-arg=TEMPLATE_IMAGE=<this "
                "image's name> or pass --sdk_container_image=<image>"
            )
        worker.sdk_container_image = image
    setup = options.view_as(SetupOptions)
    if setup.save_main_session is None:  # Beam would pickle main.py's globals for workers that never read them
        setup.save_main_session = False
    options.view_as(DebugOptions).add_experiment(NO_SUBMISSION_ENVIRONMENT)
    return worker.sdk_container_image


_STAGED_DEPENDENCIES = {
    "setup_file": "--setup_file",
    "requirements_file": "--requirements_file",
    "extra_packages": "--extra_package",
}


def drop_staged_dependencies(options: PipelineOptions) -> list[str]:
    """Unsets --setup_file, --requirements_file and --extra_package for a remote launch; returns a
    note for each. The 2017 sample's commands pass --setup_file; workers here run the template
    image, which already holds the code and its locked packages, so staging and pip-installing
    them at worker start could only add a second, unlocked copy."""
    setup = options.view_as(SetupOptions)
    notes = []
    for attribute, flag in _STAGED_DEPENDENCIES.items():
        value = getattr(setup, attribute, None)
        if value:
            setattr(setup, attribute, None)
            shown = ", ".join(value) if isinstance(value, list) else value
            notes.append(
                f"note: {flag}={shown} is not needed and was not staged: workers run the template image, "
                "which holds the template's code and its locked packages"
            )
    return notes


_ACCELERATOR = re.compile(r"worker_accelerator=(?P<spec>[^\s]+)")


def gpu_workers(options: PipelineOptions, environ=os.environ) -> int:
    """How many GPUs each worker gets (0 without `worker_accelerator`); refuses GPU workers for the CPU image.

    Dataflow takes `worker_accelerator=type:<gpu>;count:<n>;install-nvidia-driver` as a service option
    or an experiment. The CPU image has no CUDA libraries, so TensorFlow there would ignore the GPUs
    that are paid for and run on the CPU: a launch error, not a slow job.
    """
    cloud = options.view_as(GoogleCloudOptions)
    values = [*(cloud.dataflow_service_options or []), *(options.view_as(DebugOptions).experiments or [])]
    specs = [match["spec"] for value in values if (match := _ACCELERATOR.search(value))]
    if not specs:
        return 0
    parts = dict(part.split(":", 1) for part in specs[0].split(";") if ":" in part)
    try:
        count = int(parts.get("count", "1"))
    except ValueError:
        raise LaunchError(f"worker_accelerator={specs[0]}: count must be a whole number") from None
    variant = environ.get(TEMPLATE_VARIANT_VARIABLE, "").strip()
    if variant == "cpu":
        raise LaunchError(
            f"worker_accelerator={specs[0]} asks for GPU workers, but this is the CPU image, whose TensorFlow "
            "cannot use them; launch the GPU template (cloudbuild.yaml with _VARIANT=gpu; README, GPU workers)"
        )
    return max(count, 1)


def console_url(options: PipelineOptions, job_id: str) -> str:
    cloud = options.view_as(GoogleCloudOptions)
    return f"https://console.cloud.google.com/dataflow/jobs/{cloud.region}/{job_id}?project={cloud.project}"
