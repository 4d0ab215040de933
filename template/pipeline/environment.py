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

from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)

from pipeline.options import LaunchError

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


def console_url(options: PipelineOptions, job_id: str) -> str:
    cloud = options.view_as(GoogleCloudOptions)
    return f"https://console.cloud.google.com/dataflow/jobs/{cloud.region}/{job_id}?project={cloud.project}"
