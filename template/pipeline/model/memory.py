"""A model's memory once loaded, estimated from its files, and how many copies of it a worker VM keeps.

Dataflow starts one Python SDK process per vCPU on a worker VM, and by default each process loads its
own copy of the model. A large model can instead be loaded once per VM and shared by the VM's processes
(`PER_VM`: Beam's `share_model_across_processes`, one process serving it and the others calling it
through a proxy). Which of the two a job uses is decided at launch (`launch.model_memory`).

What a load costs was measured (`benchmarks/model_memory.py`, TensorFlow 2.21 on CPU, a 281.5 MB MLP from
`scripts/make_large_model.py`): the peak RSS of a process grows by 1.13x the files' size for a SavedModel
and for a TF1 checkpoint (the variables are read into memory once; the rest is the graph and the first
call's buffers), and by 4.05x for a `.keras` file (Keras builds the model with fresh weights, then reads
the archive and assigns them; 2.2x stays after the load). The factors below round those up.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.model.files import ModelFormat, ModelLocation, model_files

# --model_copies: chosen at launch by size, or forced.
AUTO, PER_PROCESS, PER_VM = "auto", "per_process", "per_vm"
MODEL_COPIES = (AUTO, PER_PROCESS, PER_VM)

# Peak memory of a loaded model per byte of its files, by format (measured; see above).
LOAD_FACTORS = {ModelFormat.SAVED_MODEL: 1.2, ModelFormat.TF1_CHECKPOINT: 1.2, ModelFormat.KERAS: 4.1}


def files_bytes(location: ModelLocation) -> int:
    """The size on disk of the files a model's loader reads (local or remote, listed, never read)."""
    return sum(model_files(location).values())


def loaded_bytes(location: ModelLocation, size_on_disk: int) -> int:
    """The memory one loaded copy of the model takes at its peak, estimated from its files' size."""
    return int(size_on_disk * LOAD_FACTORS[location.format])


@dataclass(frozen=True)
class ModelCopies:
    """How many copies of the model each worker VM keeps, and why (said in the launch summary)."""

    per_vm: bool = False  # one copy per VM, served to all its processes; else one copy in each process
    reason: str = "the default"

    def describe(self) -> str:
        return f"{'one per VM' if self.per_vm else 'one per process'} ({self.reason})"
