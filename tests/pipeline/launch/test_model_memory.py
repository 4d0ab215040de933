"""One model copy per SDK process or per VM, chosen by the model's size and the worker's memory, or forced; a
model that fits the worker type in neither layout refused in one line that says what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.errors import LaunchError
from pipeline.launch.model_memory import (
    CALLER_PROCESS_BYTES,
    GIB,
    SDK_PROCESS_BYTES,
    machine_type,
    need,
    plan_model_copies,
    sdk_processes,
    worker_machine,
)
from pipeline.model.files import ModelFormat, ModelLocation
from pipeline.model.versions import locate_served


@pytest.mark.parametrize(
    ("name", "vcpus", "gib"),
    [
        ("n1-standard-1", 1, 3.75),
        ("n1-highmem-16", 16, 104),
        ("n1-highcpu-8", 8, 7.2),
        ("n2-standard-16", 16, 64),
        ("n2-highmem-8", 8, 64),
        ("n2d-highcpu-32", 32, 32),
        ("e2-standard-4", 4, 16),
        ("e2-medium", 2, 4),
        ("c2-standard-30", 30, 120),
        ("c3-highcpu-22", 22, 44),
        ("n4-highmem-4", 4, 32),
        ("m1-ultramem-40", 40, 961),
        ("custom-4-16384", 4, 16),
        ("n2-custom-6-3072", 6, 3),
        ("n2-custom-2-32768-ext", 2, 32),
        ("zones/us-central1-a/machineTypes/N1-STANDARD-4", 4, 15),
    ],
)
def test_machine_types_of_the_known_families_and_custom_types(name, vcpus, gib):
    machine = machine_type(name)
    assert machine is not None and machine.vcpus == vcpus
    assert machine.memory_bytes == pytest.approx(gib * GIB, rel=1e-6)


@pytest.mark.parametrize("name", ["g2-standard-4", "a2-highgpu-1g", "t2a-standard-8", "c2-highmem-4", "n1-mega-2", ""])
def test_an_unknown_machine_type_is_not_guessed(name):
    assert machine_type(name) is None


def test_the_worker_type_given_or_dataflows_default_for_batch_and_streaming_jobs():
    assert worker_machine(PipelineOptions([]), streaming=False) == "n1-standard-1"
    assert worker_machine(PipelineOptions([]), streaming=True) == "n1-standard-2"
    assert worker_machine(PipelineOptions(["--machine_type=n2-highmem-4"]), streaming=False) == "n2-highmem-4"
    assert worker_machine(PipelineOptions(["--worker_machine_type=e2-standard-8"]), streaming=True) == "e2-standard-8"


def test_one_sdk_process_per_vcpu_unless_the_experiment_says_one():
    machine = machine_type("n2-standard-16")
    assert machine is not None
    assert sdk_processes(PipelineOptions([]), machine) == 16
    assert sdk_processes(PipelineOptions(["--experiments=no_use_multiple_sdk_containers"]), machine) == 1


def test_what_each_layout_needs():
    machine = machine_type("n1-standard-4")
    assert machine is not None
    needs = need(machine, 4, 2 * GIB)
    assert needs.per_process == 4 * (SDK_PROCESS_BYTES + 2 * GIB)
    # One copy per VM: the process that holds it, and three that only call it (they import no TensorFlow).
    assert needs.one_copy == SDK_PROCESS_BYTES + 2 * GIB
    assert needs.per_vm == SDK_PROCESS_BYTES + 2 * GIB + 3 * CALLER_PROCESS_BYTES
    assert CALLER_PROCESS_BYTES < SDK_PROCESS_BYTES
    assert needs.usable == int(15 * GIB * 0.8)


def model_of(folder: Path, tiny_models, gib: float) -> str:
    """A SavedModel whose variables take `gib` GiB on disk (a sparse file: sizes are listed, never read)."""
    shutil.copytree(tiny_models["saved_model_flat"], folder)
    (data,) = (folder / "variables").glob("variables.data-*")
    with open(data, "r+b") as handle:
        handle.truncate(int(gib * GIB))
    return str(folder)


@pytest.fixture(scope="module")
def models(tiny_models, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("sized-models")
    return {
        "small": str(tiny_models["saved_model_flat"]),
        **{name: model_of(folder / name, tiny_models, gib) for name, gib in (("1g", 1.0), ("3g", 3.0), ("40g", 40.0))},
    }


def located(model: str) -> ModelLocation:
    """Where the launch found the model; a path to nothing stays one (a plan that reads no sizes never lists it)."""
    if model.startswith("/nowhere/"):
        return ModelLocation(ModelFormat.SAVED_MODEL, model, model)
    return locate_served(model, "serving_default")[0]


def planned(
    model: str, *flags: str, value: str | None = None, local: bool = False, streaming: bool = False, gpus: int = 0
):
    return plan_model_copies(
        value,
        PipelineOptions(list(flags)),
        located(model),
        local_runner=local,
        streaming=streaming,
        gpu_count=gpus,
    )


def refusal(*args, **kwargs) -> str:
    with pytest.raises(LaunchError) as error:
        planned(*args, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_auto_keeps_a_copy_per_process_where_they_all_fit(models):
    copies = planned(models["1g"], "--machine_type=n1-standard-4")
    assert not copies.per_vm
    assert copies.reason == "auto: a copy in each of 4 process(es) needs 8.8 of n1-standard-4's 12 usable GB"


def test_auto_shares_one_copy_per_vm_where_a_copy_per_process_would_not_fit(models):
    copies = planned(models["3g"], "--machine_type=n2-standard-16")
    assert copies.per_vm
    assert copies.describe() == (
        "one per VM (auto: a copy in each of 16 process(es) would need 73.6 GB, more than n2-standard-16's 51.2 "
        "usable GB; one per VM needs 12.1)"
    )
    assert not planned(
        models["3g"], "--machine_type=n2-standard-16", "--experiments=no_use_multiple_sdk_containers"
    ).per_vm


def test_a_model_too_large_for_the_worker_in_any_layout_is_refused_with_what_to_do(models):
    message = refusal(models["3g"])  # a batch job on Dataflow's default n1-standard-1
    assert message.startswith(
        f"--model={models['3g']}: the model (3,072 MB on disk, about 3.6 GB once loaded as a TF2 SavedModel)"
    )
    assert "does not fit one n1-standard-1 (1 vCPU, 3.75 GB) worker even as one copy per VM" in message
    assert message.endswith(
        "choose a machine type with more memory, such as a highmem one (--machine_type=n2-highmem-2)"
    )
    assert refusal(models["40g"], "--machine_type=n2-highmem-4").endswith("(--machine_type=n2-highmem-16)")
    assert "n1-standard-2 (2 vCPU, 7.5 GB)" in refusal(models["40g"], streaming=True)


@pytest.mark.parametrize("machine", ["n1-highcpu-16", "n2-highcpu-2", "n2d-highcpu-8", "e2-highcpu-32", "e2-small"])
def test_machines_under_1_gb_per_vcpu_still_launch_a_small_model_with_one_copy_per_process(models, machine):
    """Their processes' allowance alone exceeds the estimate; it is not the model's doing, and one process
    serving all the others would cost throughput to save memory the copies hardly take."""
    copies = planned(models["small"], f"--machine_type={machine}")
    assert not copies.per_vm and " would need " in copies.reason
    assert copies.reason.endswith("the processes' own memory is the rest")


def test_a_model_that_fits_once_is_kept_per_vm_where_only_the_other_processes_exceed_the_estimate(models):
    copies = planned(models["3g"], "--machine_type=n1-highcpu-16")
    assert copies.per_vm
    assert copies.reason == (
        "auto: a copy in each of 16 process(es) would need 73.6 GB and one per VM 12.1, both more than "
        "n1-highcpu-16's 11.52 usable GB; the model fits (one copy and its process need 4.6): the rest is the "
        "other processes' own memory, at least 0.5 GB each"
    )
    assert planned(models["3g"], "--machine_type=n1-highcpu-16", value="per_vm").reason.startswith(
        "--model_copies=per_vm: a copy in each of 16 process(es) would need 73.6 GB and one per VM 12.1, both"
    )
    message = refusal(models["40g"], "--machine_type=n1-highcpu-16")
    assert "does not fit one n1-highcpu-16 (16 vCPU, 14.4 GB) worker even as one copy per VM" in message


def test_a_machine_smaller_than_one_process_is_not_checked(models):
    copies = planned(models["3g"], "--machine_type=e2-micro")
    assert not copies.per_vm
    assert (
        copies.reason == "e2-micro's 0.8 usable GB are less than one SDK process's 1 GB allowance: memory not checked"
    )


@pytest.mark.parametrize(
    ("flags", "why"),
    [
        (["--dataflow_service_options=enable_prime"], "Dataflow Prime chooses the workers' memory"),
        (["--experiments=enable_prime", "--machine_type=n1-standard-1"], "Dataflow Prime chooses the workers' memory"),
        (["--resource_hints=min_ram=16GB"], "resource hint min_ram=16GB: Dataflow chooses a worker with that memory"),
        (["--resource_hint=minRam=16GB"], "resource hint minRam=16GB: Dataflow chooses a worker with that memory"),
    ],
)
def test_workers_dataflow_sizes_are_not_checked_against_its_default_machine(models, flags, why):
    copies = planned(models["3g"], *flags)  # refused on n1-standard-1, the default without these
    assert not copies.per_vm and copies.reason == f"{why}: memory not checked"
    forced = planned(models["3g"], *flags, value="per_vm")
    assert forced.per_vm and forced.reason == f"{why}: memory not checked, --model_copies=per_vm"


def test_a_min_ram_hint_beside_a_machine_type_leaves_the_machine_type_checked(models):
    assert "n1-standard-1 (1 vCPU, 3.75 GB)" in refusal(
        models["3g"], "--machine_type=n1-standard-1", "--resource_hints=min_ram=16GB"
    )


def test_either_layout_can_be_forced_where_it_fits(models):
    assert planned(models["1g"], "--machine_type=n1-standard-4", value="per_vm").per_vm
    forced = planned(models["3g"], "--machine_type=n2-highmem-16", value="PER_PROCESS ")
    assert not forced.per_vm and forced.reason.startswith(
        "--model_copies=per_process: a copy in each of 16 process(es)"
    )
    message = refusal(models["3g"], "--machine_type=n2-standard-16", value="per_process")
    assert message.startswith("--model_copies=per_process: 16 copies of the model (a copy takes about 3.6 GB)")
    assert message.endswith(
        "use --model_copies=per_vm (or auto), or a machine type with more memory per vCPU (highmem)"
    )


def test_an_unknown_machine_type_keeps_a_copy_per_process_and_says_memory_was_not_checked(models):
    copies = planned(models["40g"], "--machine_type=g2-standard-4")
    assert not copies.per_vm
    assert copies.reason == "machine type g2-standard-4 is not one this template knows the memory of: not checked"
    assert planned(models["40g"], "--machine_type=g2-standard-4", value="per_vm").per_vm


def test_gpu_workers_keep_one_copy_per_vm_and_refuse_a_copy_per_process(models):
    copies = planned(models["small"], gpus=1)
    assert copies.per_vm and copies.reason == "GPU workers: their processes share the GPU"
    assert refusal(models["small"], gpus=1, value="per_process").startswith(
        "--model_copies=per_process: GPU workers keep one model copy per VM"
    )


def test_a_local_run_keeps_a_copy_per_process_unless_told_and_reads_no_sizes(models):
    assert planned("/nowhere/model", local=True) == planned("/nowhere/model", local=True, value="auto")
    assert planned("/nowhere/model", local=True).describe() == "one per process (local run)"
    assert planned("/nowhere/model", local=True, value="per_vm").describe() == (
        "one per VM (local run, --model_copies=per_vm)"
    )


def test_a_value_that_is_no_layout_is_refused(models):
    assert refusal(models["small"], value="2") == "--model_copies=2: must be one of auto, per_process, per_vm"
