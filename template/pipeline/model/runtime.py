"""TensorFlow, imported once and quietly: its native start-up lines are noise on CPU machines."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from typing import Any

from pipeline.errors import NoGpuError

TEMPLATE_VARIANT_VARIABLE = "TEMPLATE_VARIANT"  # cpu or gpu: the image variant, set by the Dockerfile


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hides what native code writes to stderr (fd 2), e.g. TensorFlow's import-time CUDA probe."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 to protect
        yield
        return
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> Any:
    """TensorFlow, imported without its start-up lines about absent CUDA drivers on CPU machines.

    Python errors still surface as exceptions; only native log lines are dropped.
    """
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced():
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()  # the CUDA probe logs here, once
    return importlib.import_module("tensorflow")


def require_gpu(what: str) -> None:
    """Refuses to run a GPU job on the CPU: its rate would be a fraction of what was paid for,
    unnoticed. Usual causes: the NVIDIA driver was not installed (`install-nvidia-driver` missing
    from worker_accelerator), or the image's CUDA libraries do not match the driver."""
    tensorflow = import_tensorflow()
    if not tensorflow.config.list_physical_devices("GPU"):
        raise NoGpuError(
            f"{what}: the job asked for GPU workers, but TensorFlow sees no GPU on this worker "
            f"({TEMPLATE_VARIANT_VARIABLE}={os.environ.get(TEMPLATE_VARIANT_VARIABLE, 'unset')}); check that "
            "worker_accelerator includes install-nvidia-driver and that the workers run the GPU image"
        )
