"""Where the job runs: a local runner (wait, print a summary) or a service such as Dataflow.

In the template's container image, the image's own name is baked in (TEMPLATE_IMAGE, set at
build time) so that Dataflow workers run the very image the launcher runs, with the same
code and the same locked packages, unless the user chose another `sdk_container_image`.
"""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, WorkerOptions

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


def use_template_image_for_workers(options: PipelineOptions, environ=os.environ) -> str | None:
    """Sets sdk_container_image to this image for a remote runner, if unset; returns what it set."""
    worker = options.view_as(WorkerOptions)
    image = environ.get(TEMPLATE_IMAGE_VARIABLE, "").strip()
    if is_local(options) or worker.sdk_container_image or not image:
        return None
    worker.sdk_container_image = image
    return image
