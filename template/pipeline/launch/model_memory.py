"""One model copy per SDK process or one per worker VM: chosen at launch from the model's size and the
worker machine type's memory, or forced by --model_copies; a model that fits the worker in no layout is refused.

Dataflow starts one Python SDK process per vCPU of a worker VM (one in all with the experiment
`no_use_multiple_sdk_containers`). A VM holds

    with a copy per process:  processes x (SDK_PROCESS_BYTES + model)
    with one copy per VM:     SDK_PROCESS_BYTES + model + (processes - 1) x CALLER_PROCESS_BYTES

where `model` is the model's files' size times its format's measured load factor (`model.memory`),
SDK_PROCESS_BYTES what a worker process of this template takes besides a model it loads, and
CALLER_PROCESS_BYTES what a process that only calls a shared copy takes (both measured by
`benchmarks/model_memory.py`). Either is compared with USABLE_SHARE of the VM's memory (the rest is for
the OS and Dataflow's own agents). `auto` keeps a copy per process where that fits (no proxy between
processes and the model), else one per VM. A model is refused only where it cannot fit in any layout:
where one copy and the one process that holds it exceed the usable memory. The other processes' own
memory is not the model's doing: where one copy per VM exceeds the estimate only with them (highcpu
types have under 1 GB per vCPU), the job still keeps one copy per VM, and the reason says so.
A machine type this template does not know, one Dataflow chooses (Dataflow Prime, a `min_ram` resource
hint without a machine type), and one smaller than a single process's allowance are not guessed at:
one copy per process unless forced, memory not checked, said so. GPU workers keep one copy per VM; a
local run keeps one per process unless --model_copies=per_vm.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.transforms.resources import MinRamHint, ResourceHint

from pipeline.errors import LaunchError, first_line
from pipeline.model.files import ModelLocation
from pipeline.model.memory import AUTO, MODEL_COPIES, PER_PROCESS, PER_VM, ModelCopies, files_bytes, loaded_bytes

GIB = 1 << 30
# A worker process without its model: 0.73 GiB measured (Python, Beam, TensorFlow, Arrow, batches in flight),
# with room for larger batches.
SDK_PROCESS_BYTES = int(1.0 * GIB)
# A process that only calls a copy shared per VM: 271 MB (0.26 GiB) measured, as it imports no TensorFlow
# unless its input or UDF does (about 0.45 GiB more then); with room for larger batches in flight.
CALLER_PROCESS_BYTES = int(0.5 * GIB)
USABLE_SHARE = 0.8  # of a VM's memory, for the job's processes
# Dataflow's default worker machine types: batch jobs', and streaming jobs' (Python streaming jobs always
# run on Streaming Engine, whose default is n1-standard-2 rather than n1-standard-4).
DEFAULT_BATCH_MACHINE, DEFAULT_STREAMING_MACHINE = "n1-standard-1", "n1-standard-2"
ONE_SDK_PROCESS = "no_use_multiple_sdk_containers"  # the Dataflow experiment for one SDK process per VM
PRIME = "enable_prime"  # Dataflow Prime (a service option, or an experiment): Dataflow sizes the workers

# GB (GiB, as Compute Engine counts them) of memory per vCPU of predefined machine types, by family and kind.
_GIB_PER_VCPU = {
    "n1": {"standard": 3.75, "highmem": 6.5, "highcpu": 0.9},
    "n2": {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0},
    "n2d": {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0},
    "e2": {"standard": 4.0, "highmem": 8.0, "highcpu": 1.0},
    "c2": {"standard": 4.0},
    "c2d": {"standard": 4.0, "highmem": 8.0, "highcpu": 2.0},
    "c3": {"standard": 4.0, "highmem": 8.0, "highcpu": 2.0},
    "n4": {"standard": 4.0, "highmem": 8.0, "highcpu": 2.0},
}
# Machine types whose memory does not follow from their name: (vCPUs, GB).
_NAMED = {
    "e2-micro": (2, 1.0),
    "e2-small": (2, 2.0),
    "e2-medium": (2, 4.0),
    "m1-ultramem-40": (40, 961.0),
    "m1-ultramem-80": (80, 1922.0),
    "m1-ultramem-160": (160, 3844.0),
    "m1-megamem-96": (96, 1433.6),
}
_PREDEFINED = re.compile(r"^(?P<family>[a-z][a-z0-9]*)-(?P<kind>standard|highmem|highcpu)-(?P<vcpus>[1-9][0-9]*)$")
# Custom types: custom-<vCPUs>-<MB> (N1), n2-custom-..., n2d-, n4-, e2-; -ext for extended memory.
_CUSTOM = re.compile(r"^(?:(?:n2|n2d|n4|e2)-)?custom-(?P<vcpus>[1-9][0-9]*)-(?P<mb>[1-9][0-9]*)(?:-ext)?$")
_SUGGESTED_SIZES = (2, 4, 8, 16, 32, 48, 64, 80, 96, 128)  # of n2-highmem, for a model too large
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class MachineType:
    name: str
    vcpus: int
    memory_bytes: int

    def __str__(self) -> str:
        return f"{self.name} ({self.vcpus} vCPU, {_gb(self.memory_bytes)} GB)"


def machine_type(name: str) -> MachineType | None:
    """The vCPUs and memory of a Compute Engine machine type by its name; None for one not known here."""
    name = name.strip().rsplit("/", 1)[-1].lower()
    if name in _NAMED:
        vcpus, gib = _NAMED[name]
        return MachineType(name, vcpus, int(gib * GIB))
    if custom := _CUSTOM.fullmatch(name):
        return MachineType(name, int(custom["vcpus"]), int(custom["mb"]) << 20)
    predefined = _PREDEFINED.fullmatch(name)
    if predefined is None or predefined["kind"] not in _GIB_PER_VCPU.get(predefined["family"], {}):
        return None
    vcpus = int(predefined["vcpus"])
    return MachineType(name, vcpus, int(vcpus * _GIB_PER_VCPU[predefined["family"]][predefined["kind"]] * GIB))


def worker_machine(options: PipelineOptions, streaming: bool) -> str:
    """The workers' machine type: --machine_type (or --worker_machine_type), else Dataflow's default."""
    given = (options.view_as(WorkerOptions).machine_type or "").strip()
    return given or (DEFAULT_STREAMING_MACHINE if streaming else DEFAULT_BATCH_MACHINE)


def sdk_processes(options: PipelineOptions, machine: MachineType) -> int:
    """How many SDK processes Dataflow starts on each worker: one per vCPU, or one with the experiment."""
    experiments = options.view_as(DebugOptions).experiments or []
    return 1 if ONE_SDK_PROCESS in experiments else machine.vcpus


def chosen_by_dataflow(options: PipelineOptions) -> str | None:
    """Why Dataflow, not a machine type given here, sizes the workers (Prime; a `min_ram` resource hint
    with no machine type given), or None: the check then has no machine to weigh the model against."""
    cloud = options.view_as(GoogleCloudOptions)
    if PRIME in [*(cloud.dataflow_service_options or []), *(options.view_as(DebugOptions).experiments or [])]:
        return "Dataflow Prime chooses the workers' memory"
    if (options.view_as(WorkerOptions).machine_type or "").strip():
        return None
    for hint in options.view_as(StandardOptions).resource_hints or []:
        name, _, value = (part.strip() for part in str(hint).partition("="))
        try:
            known = ResourceHint.get_by_name(name)
        except KeyError:  # not a hint Beam knows: Beam refuses it itself
            continue
        if known is MinRamHint:
            return f"resource hint {name}={value}: Dataflow chooses a worker with that memory"
    return None


@dataclass(frozen=True)
class Need:
    """The memory each layout needs on one VM, one copy beside the process that holds it, and what the VM
    gives the job."""

    per_process: int
    per_vm: int
    one_copy: int
    usable: int


def need(machine: MachineType, processes: int, model_bytes: int) -> Need:
    one_copy = SDK_PROCESS_BYTES + model_bytes
    return Need(
        per_process=processes * one_copy,
        per_vm=one_copy + (processes - 1) * CALLER_PROCESS_BYTES,
        one_copy=one_copy,
        usable=int(machine.memory_bytes * USABLE_SHARE),
    )


def plan_model_copies(
    value: str | None,
    options: PipelineOptions,
    location: ModelLocation,
    *,
    local_runner: bool,
    streaming: bool,
    gpu_count: int,
) -> ModelCopies:
    """How many model copies each worker keeps, checked against its memory; a one-line LaunchError
    for a model that cannot fit (or a forced layout that cannot)."""
    choice = str(value or AUTO).strip().lower()
    if choice not in MODEL_COPIES:
        raise LaunchError(f"--model_copies={value}: must be one of {', '.join(MODEL_COPIES)}")
    if gpu_count:
        if choice == PER_PROCESS:
            raise LaunchError(
                "--model_copies=per_process: GPU workers keep one model copy per VM (TensorFlow would put "
                "every process's copy on the first GPU); leave --model_copies at auto"
            )
        return ModelCopies(per_vm=True, reason="GPU workers: their processes share the GPU")
    if local_runner:
        return ModelCopies(per_vm=choice == PER_VM, reason=f"local run{_forced(choice)}")
    if dataflow := chosen_by_dataflow(options):
        return ModelCopies(per_vm=choice == PER_VM, reason=f"{dataflow}: memory not checked{_forced(choice)}")
    name = worker_machine(options, streaming)
    machine = machine_type(name)
    if machine is None:
        unknown = f"machine type {name} is not one this template knows the memory of: not checked"
        return ModelCopies(per_vm=choice == PER_VM, reason=f"{unknown}{_forced(choice)}")
    if (usable := int(machine.memory_bytes * USABLE_SHARE)) < SDK_PROCESS_BYTES:
        small = (
            f"{machine.name}'s {_gb(usable)} usable GB are less than one SDK process's {_gb(SDK_PROCESS_BYTES)} "
            "GB allowance: memory not checked"
        )
        return ModelCopies(per_vm=choice == PER_VM, reason=f"{small}{_forced(choice)}")
    try:
        size = files_bytes(location)
    except Exception as error:  # storage errors (403, timeouts)
        raise LaunchError(f"--model={location.given}: cannot list the model's files: {first_line(error)}") from None
    copies = _choose(choice, machine, sdk_processes(options, machine), location, size)
    _LOG.info("Model copies per worker: %s", copies.describe())
    return copies


SMALL_MODELS_SHARE = 0.1  # copies in every process that take at most this share of a VM stay per process


def _choose(choice: str, machine: MachineType, processes: int, location: ModelLocation, size: int) -> ModelCopies:
    model_bytes = loaded_bytes(location, size)
    needs = need(machine, processes, model_bytes)
    copy = f"a copy takes about {_gb(model_bytes)} GB"
    if needs.one_copy > needs.usable:
        raise LaunchError(
            f"--model={location.given}: the model ({_mb(size)} MB on disk, about {_gb(model_bytes)} GB once loaded "
            f"as a {location.format.value}) does not fit one {machine} worker even as one copy per VM: with the SDK "
            f"process that holds it, it needs about {_gb(needs.one_copy)} GB of the {_gb(needs.usable)} GB "
            f"the job can use; choose a machine type with more memory, such as a highmem one "
            f"(--machine_type={_suggestion(model_bytes)})"
        )
    fits_per_process = needs.per_process <= needs.usable
    if choice == PER_PROCESS and not fits_per_process:
        raise LaunchError(
            f"--model_copies=per_process: {processes} copies of the model ({copy}) and their processes need about "
            f"{_gb(needs.per_process)} GB, more than the {_gb(needs.usable)} GB one {machine} worker gives the job; "
            "use --model_copies=per_vm (or auto), or a machine type with more memory per vCPU (highmem)"
        )
    usable = f"{machine.name}'s {_gb(needs.usable)} usable GB"
    each = f"a copy in each of {processes} process(es)"
    if fits_per_process:
        fit = f"{each} needs {_gb(needs.per_process)} of {usable}"
    elif needs.per_vm <= needs.usable:
        fit = f"{each} would need {_gb(needs.per_process)} GB, more than {usable}; one per VM needs {_gb(needs.per_vm)}"
    else:
        fit = (
            f"{each} would need {_gb(needs.per_process)} GB and one per VM {_gb(needs.per_vm)}, both more than "
            f"{usable}; the model fits (one copy and its process need {_gb(needs.one_copy)}): the rest is the "
            f"other processes' own memory, at least {_gb(CALLER_PROCESS_BYTES)} GB each"
        )
    if choice != AUTO:
        return ModelCopies(per_vm=choice == PER_VM, reason=f"--model_copies={choice}: {fit}")
    if not fits_per_process and processes * model_bytes <= SMALL_MODELS_SHARE * needs.usable:
        # a highcpu type: its SDK processes alone fill the estimate, and one process serving all the others
        # would cost them throughput to save memory the copies hardly take
        copies = _gb(processes * model_bytes)
        small = f"{each} would need {_gb(needs.per_process)} of {usable}, but the copies take {copies}"
        return ModelCopies(per_vm=False, reason=f"auto: {small}: the processes' own memory is the rest")
    return ModelCopies(per_vm=not fits_per_process, reason=f"auto: {fit}")


def _suggestion(model_bytes: int) -> str:
    """The smallest n2-highmem type that holds the model as one copy per VM, by the same rule."""
    for vcpus in _SUGGESTED_SIZES:
        machine = machine_type(f"n2-highmem-{vcpus}")
        assert machine is not None
        needs = need(machine, vcpus, model_bytes)
        if needs.per_vm <= needs.usable:
            return machine.name
    return "m1-ultramem-40"


def _forced(choice: str) -> str:
    return "" if choice == AUTO else f", --model_copies={choice}"


def _gb(size: int) -> str:
    """GiB, as Compute Engine's "GB" of memory, to two decimals at most (3.75, 7.2, 64)."""
    return f"{size / GIB:,.2f}".rstrip("0").rstrip(".")


def _mb(size: int) -> str:
    return f"{size / (1 << 20):,.0f}"
