"""Local, submitted or template mode: whether the job waits and summarises or hands over and returns,
and what a remote launch gives its workers."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    WorkerOptions,
)
from apache_beam.runners.portability.fn_api_runner import fn_runner

from pipeline.errors import LaunchError
from pipeline.launch.environment import (
    NO_SUBMISSION_ENVIRONMENT,
    LaunchMode,
    default_region,
    drop_staged_dependencies,
    gpu_workers,
    is_local,
    launch_mode,
    local_batch_runner,
    prepare_remote_launch,
    runner_name,
)


@pytest.mark.parametrize(
    ("argv", "name", "local"),
    [
        ([], "directrunner", True),
        (["--runner=DirectRunner"], "directrunner", True),
        (["--runner=direct"], "directrunner", True),
        (["--runner=prism"], "prismrunner", True),
        (["--runner=SwitchingDirectRunner"], "switchingdirectrunner", True),
        (["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"], "directrunner", True),
        (["--runner=DataflowRunner"], "dataflowrunner", False),
        (["--runner=dataflow"], "dataflowrunner", False),
    ],
)
def test_runner_names_are_read_the_way_beam_reads_them(argv, name, local):
    options = PipelineOptions(argv)
    assert runner_name(options) == name
    assert is_local(options) is local


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        ([], LaunchMode.LOCAL),
        (["--runner=DirectRunner", "--template_location=gs://b/t"], LaunchMode.LOCAL),
        (["--runner=DataflowRunner"], LaunchMode.SUBMIT),
        (
            ["--runner=DataflowRunner", "--template_location=gs://b/staging/template_launches/1/job_object"],
            LaunchMode.TEMPLATE,
        ),
    ],
)
def test_launch_modes(argv, mode):
    assert launch_mode(PipelineOptions(argv)) is mode


def test_a_remote_launch_uses_the_template_image_and_stages_nothing_else():
    options = PipelineOptions(["--runner=DataflowRunner"])
    assert (
        prepare_remote_launch(options, {"TEMPLATE_IMAGE": "europe-docker.pkg.dev/p/r/i:1"})
        == "europe-docker.pkg.dev/p/r/i:1"
    )
    assert options.view_as(WorkerOptions).sdk_container_image == "europe-docker.pkg.dev/p/r/i:1"
    assert options.view_as(SetupOptions).save_main_session is False
    assert NO_SUBMISSION_ENVIRONMENT in options.view_as(DebugOptions).experiments


def test_the_users_choices_win():
    options = PipelineOptions(["--runner=DataflowRunner", "--sdk_container_image=mine:2", "--save_main_session"])
    assert prepare_remote_launch(options, {"TEMPLATE_IMAGE": "other:1"}) == "mine:2"
    assert options.view_as(SetupOptions).save_main_session is True


def test_no_image_at_all_is_a_launch_error():
    with pytest.raises(LaunchError, match="no worker image"):
        prepare_remote_launch(PipelineOptions(["--runner=DataflowRunner"]), {"TEMPLATE_IMAGE": " "})


def test_the_seeds_setup_file_is_dropped_with_a_note():
    options = PipelineOptions(
        ["--runner=DataflowRunner", "--setup_file=prediction/setup.py", "--extra_package=a.tar.gz"]
    )
    notes = drop_staged_dependencies(options)
    assert [note.split(" is not needed")[0] for note in notes] == [
        "note: --setup_file=prediction/setup.py",
        "note: --extra_package=a.tar.gz",
    ]
    assert options.view_as(SetupOptions).setup_file is None and options.view_as(SetupOptions).extra_packages is None
    assert drop_staged_dependencies(PipelineOptions(["--runner=DataflowRunner"])) == []


def test_a_missing_region_is_dataflows_default_with_a_note():
    options = PipelineOptions(["--runner=DataflowRunner"])
    assert default_region(options) == [
        "note: --region is not set: the job runs in us-central1, Dataflow's default; pass --region to choose"
    ]
    assert options.view_as(GoogleCloudOptions).region == "us-central1"
    assert default_region(PipelineOptions(["--region=europe-west4"])) == []


ACCELERATOR = "worker_accelerator=type:nvidia-tesla-t4;count:2;install-nvidia-driver"


@pytest.mark.parametrize("flag", [f"--dataflow_service_options={ACCELERATOR}", f"--experiments={ACCELERATOR}"])
def test_gpu_workers_are_counted_in_the_gpu_image_and_refused_in_the_cpu_image(flag):
    options = PipelineOptions(["--runner=DataflowRunner", flag])
    assert gpu_workers(options, {"TEMPLATE_VARIANT": "gpu"}) == 2
    with pytest.raises(LaunchError, match="asks for GPU workers, but this is the CPU image"):
        gpu_workers(options, {"TEMPLATE_VARIANT": "cpu"})
    assert gpu_workers(PipelineOptions(["--runner=DataflowRunner"]), {"TEMPLATE_VARIANT": "cpu"}) == 0


@pytest.mark.parametrize("runner", [None, "DirectRunner", "SwitchingDirectRunner"])
def test_a_local_batch_job_runs_on_the_fn_api_runner_with_its_options_never_trying_prism(runner):
    argv = ["--temp_location=/tmp/somewhere"] + ([f"--runner={runner}"] if runner else [])
    chosen = local_batch_runner(PipelineOptions(argv), streaming=False)
    assert isinstance(chosen, fn_runner.FnApiRunner)
    options = chosen._provision_info.provision_info.pipeline_options
    assert options["beam:option:temp_location:v1"] == "/tmp/somewhere"  # what workers read as the job's options


@pytest.mark.parametrize(
    ("argv", "streaming"),
    [
        (["--runner=DirectRunner"], True),  # Beam's streaming DirectRunner: the FnApiRunner runs batch jobs only
        (["--runner=PrismRunner"], False),  # asked for by name
        (["--runner=DataflowRunner"], False),
    ],
)
def test_other_runners_are_left_to_beam(argv, streaming):
    assert local_batch_runner(PipelineOptions(argv), streaming=streaming) is None
