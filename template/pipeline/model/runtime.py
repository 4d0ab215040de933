"""TensorFlow, imported once, quietly and without Keras: its native start-up lines are noise on CPU machines,
and Keras is a second import as long as TensorFlow's own that only `.keras` files need."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from types import ModuleType
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


class _KerasLater(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        raise ImportError("Keras is imported when a .keras model needs it")

    def exec_module(self, module: ModuleType) -> None:
        raise ImportError("Keras is imported when a .keras model needs it")


class _DeferKeras(importlib.abc.MetaPathFinder):
    """Finds Keras (TensorFlow asks where it is) but refuses to load it: TensorFlow's `__init__` then skips its
    eager `import keras.src.optimizers` (in a try block, for Keras-registered savers in SavedModels, which
    this template's loaders do not use). A `.keras` model imports Keras itself, in full, when it is loaded."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "keras":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            spec.loader = _KerasLater()
        return spec


@contextlib.contextmanager
def _keras_deferred() -> Iterator[None]:
    """While TensorFlow imports, Keras is found but not loaded: it costs about as much as TensorFlow itself
    (0.6 to 1 s, with matplotlib and pandas), for nothing a SavedModel or a TF1 checkpoint needs."""
    finder = _DeferKeras()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def _tensorflow_libraries() -> list[str]:
    """TensorFlow's two large native libraries, where the installed wheel has them."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = next(iter(spec.submodule_search_locations))
    names = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")
    return [os.path.join(folder, name) for name in names if os.path.exists(os.path.join(folder, name))]


_preloading: list[threading.Thread] = []  # the thread loading TensorFlow's libraries, until the import joins it


def _load_libraries(paths: list[str]) -> None:
    """Loads the libraries, their native start-up lines (absl's, oneDNN's, the CUDA probe's) kept off stderr."""
    with _native_stderr_silenced():
        for path in paths:
            try:
                ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
            except OSError:  # the import will say what is wrong, in its own words
                return


def preload_tensorflow_libraries() -> threading.Thread:
    """Starts loading TensorFlow's native libraries (1.2 GB, about 0.4 s) in a thread: ctypes releases the GIL
    while the dynamic loader works, so it overlaps with Beam's import on the main thread. The later
    `import tensorflow` finds them loaded (by their sonames), instead of loading them itself.

    Call it before anything else could write to stderr: fd 2 is silenced while the libraries load (their
    static initialisers log), for the whole process; `import_tensorflow` waits for the thread."""
    thread = threading.Thread(target=_load_libraries, args=(_tensorflow_libraries(),), name="preload", daemon=True)
    _preloading.append(thread)
    thread.start()
    sys.excepthook = _after_preload(sys.excepthook)
    return thread


def _wait_for_preload() -> None:
    while _preloading:
        _preloading.pop().join()


def _after_preload(hook: Any) -> Any:
    """An excepthook that lets the preload give fd 2 back first: an error while it runs (a failed import of
    Beam, say) must reach stderr, not the preload's /dev/null."""

    def report(*exc_info: Any) -> None:
        _wait_for_preload()
        hook(*exc_info)

    return report


def import_tensorflow() -> Any:
    """TensorFlow, imported without Keras (`_keras_deferred`) and without its start-up lines about absent CUDA
    drivers on CPU machines.

    Python errors still surface as exceptions; only native log lines are dropped.
    """
    _wait_for_preload()  # fd 2 is the preload's to restore first; the loader would make the import wait anyway
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced(), _keras_deferred():
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
