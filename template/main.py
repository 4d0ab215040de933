"""Entry point of the batch-prediction template: parse, validate, build, run.

Run it directly (`python template/main.py --input ... --output ... --model ...`) or let the
Dataflow Flex Template launcher run it. On a local runner it waits and prints a summary. On
Dataflow it returns as soon as the job is handed over: in template mode (the launcher passes
--template_location) once Beam has written the job object, which the launcher then submits;
otherwise once the job is submitted, with its id and console URL.
"""

from __future__ import annotations

import time

STARTED = time.time()

import logging  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
# Worker processes of a local runner (--direct_running_mode=multi_processing) import the package too.
_TEMPLATE_DIR = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_TEMPLATE_DIR, os.environ.get("PYTHONPATH")]))

from pipeline.model.runtime import preload_tensorflow_libraries  # noqa: E402

preload_tensorflow_libraries()  # while Beam imports: about 0.3 s off the start

import apache_beam as beam  # noqa: E402
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions  # noqa: E402

from pipeline.config import JobConfig  # noqa: E402
from pipeline.errors import LaunchError, ModelBroken, ModelFault, OutputRefused  # noqa: E402
from pipeline.job import metrics, progress  # noqa: E402
from pipeline.job.graph import build  # noqa: E402
from pipeline.launch.environment import (  # noqa: E402
    LaunchMode,
    console_url,
    default_region,
    drop_staged_dependencies,
    launch_mode,
    local_batch_runner,
    prepare_remote_launch,
)
from pipeline.launch.options import check_flags, help_text  # noqa: E402
from pipeline.launch.progress import LiveProgress  # noqa: E402
from pipeline.launch.summary import format_summary  # noqa: E402
from pipeline.launch.validation import validate  # noqa: E402

# Errors that stop a local job, said in one line (Beam would log each with a traceback).
_ONE_LINE_JOB_ERRORS = (ModelBroken, ModelFault, OutputRefused)


def run(argv: list[str] | None = None, started: float | None = None) -> int:
    """Runs the job; `started` (epoch seconds) is when the command began, for the summary's timings."""
    started = time.time() if started is None else started
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(help_text("main.py"))
        return 0
    try:
        check_flags(argv)
        options = PipelineOptions(argv)
        mode = launch_mode(options)
        _configure_logging(mode)
        notes = []
        if mode is not LaunchMode.LOCAL:
            notes = drop_staged_dependencies(options) + default_region(options)
            prepare_remote_launch(options)
        config = validate(options)
    except LaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for note in notes:  # after the checks, so that a mistake stays one line
        print(note, file=sys.stderr)

    if config.streaming:  # a subscription is read as a stream: no separate flag to remember
        options.view_as(StandardOptions).streaming = True
    runner = local_batch_runner(options, config.streaming) if mode is LaunchMode.LOCAL else None
    pipeline = beam.Pipeline(runner=runner, options=options)
    build(pipeline, config, remote=mode is not LaunchMode.LOCAL)
    if mode is LaunchMode.LOCAL:
        try:
            with LiveProgress(config.input_bytes):
                result = pipeline.run()
                _wait_for(result, config)
        except _ONE_LINE_JOB_ERRORS as error:  # the runner re-raises the worker's exception
            print(f"error: {error}", file=sys.stderr)
            return 1
        counts = progress.TALLIES.counts() if config.streaming else metrics.read_counts(result)
        print(format_summary(config, counts, started, time.time()))
        return 0
    result = pipeline.run()
    if mode is LaunchMode.TEMPLATE:
        print(f"Job object written to {options.view_as(GoogleCloudOptions).template_location}")
        return 0
    job_id = result.job_id()  # type: ignore[attr-defined]  # a DataflowPipelineResult
    print(f"Submitted job {job_id}: {console_url(options, job_id)}")
    return 0


def _wait_for(result: beam.runners.runner.PipelineResult, config: JobConfig) -> None:
    """Waits for a local job: a batch job to its end, a streaming one until Ctrl-C stops it."""
    if not config.streaming:
        result.wait_until_finish()
        return
    print(f"Scoring the messages of {config.input} as they come; Ctrl-C stops the job.", file=sys.stderr)
    try:
        result.wait_until_finish()
    except KeyboardInterrupt:
        result.cancel()


def _configure_logging(mode: LaunchMode) -> None:
    """A launch logs Beam's INFO lines (what is staged, where the job object went, the job's URL):
    the launcher's log is where users look first when a launch fails. A local run keeps stderr
    for warnings and errors."""
    logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
    logging.getLogger().setLevel(logging.WARNING if mode is LaunchMode.LOCAL else logging.INFO)
    if mode is LaunchMode.LOCAL:  # the run ends with this error's one line; Beam would log it with a traceback
        logging.getLogger("apache_beam.runners.common").addFilter(_not_said_in_one_line)


def _not_said_in_one_line(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], _ONE_LINE_JOB_ERRORS))


def _exit_now(status: int) -> None:
    """Exits without tearing the interpreter down: once the job is done, unloading TensorFlow and
    Beam module by module only keeps the user waiting (0.6 s to 1.5 s after the summary)."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    _exit_now(run(started=STARTED))
