"""The model a job serves: one model, or the highest version of a versioned folder, as TensorFlow
Serving lays them out (`model/1/`, `model/2/`, ..., each a SavedModel, `.keras` file or checkpoint).

A streaming job looks for a higher version every `poll_s` seconds, in a thread of its own, whether
records come or not: a new version is loaded beside the one serving, checked against the signature
the job was launched with, and only then serves, from the next model call on. The call in flight
finishes on the version it started with, and each call says which version made its outputs, so no
record is scored twice or by a mix of versions. A version whose signature no longer fits is refused
with one log line, and the old version keeps serving.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.errors import ModelError, first_line
from pipeline.model.files import DEFAULT_SIGNATURE, ModelLocation, locate_model
from pipeline.model.loading import LoadedModel, forget_model, load_model
from pipeline.model.signatures import ModelSignature

_VERSION = re.compile(r"^[0-9]+$")
_LOG = logging.getLogger(__name__)


def version_folders(path: str) -> dict[int, str]:
    """{version: folder} of the numbered folders under `path` that hold files; {} when there are none."""
    base = path.rstrip("/")
    found: dict[int, str] = {}
    for metadata in FileSystems.match([FileSystems.join(base, "*", "*")])[0].metadata_list:
        relative = metadata.path[len(base) :].lstrip("/")
        first = relative.split("/", 1)[0]
        if _VERSION.fullmatch(first):
            found[int(first)] = FileSystems.join(base, first)
    return found


def locate_served(path: str, signature_name: str = DEFAULT_SIGNATURE) -> tuple[ModelLocation, int | None]:
    """The model at `path`, or the highest version in it: its location, and its version number (None
    for a model that is not a versioned folder)."""
    try:
        return locate_model(path, signature_name), None
    except ModelError as not_a_model:
        versions = version_folders(path)
        if not versions or "--signature_name" in str(not_a_model):
            raise not_a_model from None
    number = max(versions)
    return locate_model(versions[number], signature_name), number


def fits(candidate: ModelSignature, served: ModelSignature) -> bool:
    """Whether a new version takes and returns what the job was built for (names, dtypes, shapes)."""
    return candidate.inputs == served.inputs and candidate.outputs == served.outputs


class ServedModel:
    """The model of a job, versioned or not, called through `predict_versioned`; safe to share by threads."""

    def __init__(
        self,
        path: str,
        signature: ModelSignature,
        poll_s: float | None = None,
        signature_name: str = DEFAULT_SIGNATURE,
    ):
        self._path = path
        self._signature = signature
        self._poll_s = poll_s
        self._signature_name = signature_name
        self._refused: set[int] = set()
        location, version = locate_served(path, signature_name)
        self._serving: tuple[int | None, str, LoadedModel] = (
            version,
            location.path,
            load_model(location.path, location),
        )
        if version is not None and not fits(self.loaded.get_signature(), signature):
            # A version written after the launch checked the highest one: serve the highest that fits.
            self._refuse(version, self.loaded.get_signature(), None)
            self._serving = (-1, "", self.loaded)
            self._switch_to_highest()
            if self.version == -1:
                raise ModelError(f"--model={path}: no version fits the signature the job was launched for")
        if poll_s is not None and version is not None:
            threading.Thread(target=self._poll_forever, name="model-versions", daemon=True).start()

    @property
    def version(self) -> int | None:
        return self._serving[0]

    @property
    def loaded(self) -> LoadedModel:
        """The model serving now."""
        return self._serving[2]

    def get_signature(self) -> ModelSignature:
        return self._serving[2].get_signature()

    def predict_versioned(self, features: dict[str, np.ndarray]) -> tuple[int | None, dict[str, np.ndarray]]:
        """The outputs of one call, and the version that made them (None for an unversioned model)."""
        version, _, model = self._serving  # one read: the call keeps its version whatever happens after
        return version, model.predict(features)

    def _poll_forever(self) -> None:
        assert self._poll_s is not None
        while True:
            time.sleep(self._poll_s)
            self.poll()

    def poll(self) -> int | None:
        """Looks for a higher version and, if it fits, serves it; returns the version serving after."""
        try:
            self._switch_to_highest()
        except Exception as error:  # storage faults, a version that does not load: the old one serves on
            _LOG.warning(
                "%s: looking for a new model version failed, version %s serves on: %s",
                self._path,
                self.version,
                first_line(error),
            )
        return self.version

    def _switch_to_highest(self) -> None:
        """Serves the highest version above the serving one whose signature fits; refuses, once each, the
        higher ones that do not."""
        current, current_path, _ = self._serving
        if current is None:
            return
        for candidate, folder in sorted(version_folders(self._path).items(), reverse=True):
            if candidate <= current:
                return
            if candidate in self._refused:
                continue
            location = locate_model(folder, self._signature_name)
            model = load_model(location.path, location)
            if not fits(model.get_signature(), self._signature):
                forget_model(location.path)
                self._refuse(candidate, model.get_signature(), current)
                continue
            self._serving = (candidate, location.path, model)
            if current_path:
                forget_model(current_path)
            _LOG.warning("%s: version %d serves from now on, after version %d", self._path, candidate, current)
            return

    def _refuse(self, version: int, candidate: ModelSignature, serving: int | None) -> None:
        self._refused.add(version)
        serves_on = f"version {serving} serves on" if serving not in (None, -1) else "a lower version serves"
        _LOG.warning(
            "%s: version %d is refused: its signature no longer fits the job's input (%s); %s",
            self._path,
            version,
            _difference(candidate, self._signature),
            serves_on,
        )


def _difference(candidate: ModelSignature, served: ModelSignature) -> str:
    def described(signature: ModelSignature) -> str:
        inputs = ", ".join(f"{spec.name} {spec.dtype} {spec.shape}" for spec in signature.inputs)
        outputs = ", ".join(f"{spec.name} {spec.dtype} {spec.shape}" for spec in signature.outputs)
        return f"inputs {inputs}; outputs {outputs}"

    return f"it has {described(candidate)}, the job was launched for {described(served)}"


_SERVED: dict[str, ServedModel] = {}
_SERVING = threading.Lock()


def serve(
    path: str, signature: ModelSignature, poll_s: float | None = None, signature_name: str = DEFAULT_SIGNATURE
) -> ServedModel:
    """The model served at `path` in this process, made once: Beam may load a model again in a process
    (a runner re-creating its workers' functions), and a new version must not then bypass its checks."""
    key = f"{path}#{signature_name}"
    with _SERVING:
        if key not in _SERVED:
            _SERVED[key] = ServedModel(path, signature, poll_s, signature_name)
        return _SERVED[key]
