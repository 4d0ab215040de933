"""The model a job serves: one model, or the highest whole version of a versioned folder, as TensorFlow
Serving lays them out (`model/1/`, `model/2/`, ..., each a SavedModel, `.keras` file or checkpoint).

A version is served only when it is whole. Once any version folder holds a `_SUCCESS` marker (written
last by whoever publishes it), only marked folders are versions; without markers, a folder is tried
once its files stayed the same between two polls. A worker starts on the highest version that loads
and fits, so a half-copied one never stops it. A folder that fails to load is tried `LOAD_TRIES`
times, then refused with one log line until its files change.

A streaming job looks for a higher version every `poll_s` seconds, in a thread of its own: a new
version is loaded beside the one serving and checked against the signature the job was launched
with. It then serves on probation: its predecessor stays loaded until the new version has
predicted `PROBATION_RECORDS` records (or some, over `PROBATION_S`), and a record the new one fails
on is tried on the predecessor; if the predecessor predicts it, the new version is rolled back (`job.versioned`).
Each call says which version made its outputs, so no record is scored twice or by a mix of versions.
Each version owns its health (`model.health`): what one version learned never carries to the next.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from apache_beam.io.filesystems import FileSystems

from pipeline.errors import ModelError, first_line
from pipeline.model.files import DEFAULT_SIGNATURE, ModelLocation, locate_model
from pipeline.model.health import ModelHealth
from pipeline.model.loading import LoadedModel, forget_model, load_model
from pipeline.model.signatures import ModelSignature

READY_MARKER = "_SUCCESS"
LOAD_TRIES = 3
PROBATION_RECORDS = 1000
PROBATION_S = 600.0  # a slow stream ends a probation after this long, once the new version has predicted
_VERSION = re.compile(r"^[0-9]+$")
_LOG = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, float], ...]
Item = TypeVar("Item")
Result = TypeVar("Result")


def version_folders(path: str) -> dict[int, str]:
    """{version: folder} of the numbered folders under `path` that hold files (only those that hold the
    `_SUCCESS` marker, once one does); {} when there are none."""
    return _listed_versions(path)[0]


def _listed_versions(path: str) -> tuple[dict[int, str], bool]:
    """`version_folders`, and whether it holds only marked folders: one listing says both."""
    base = path.rstrip("/")
    found: dict[int, str] = {}
    marked: set[int] = set()
    for metadata in FileSystems.match([FileSystems.join(base, "*", "*")])[0].metadata_list:
        relative = metadata.path[len(base) :].lstrip("/")
        first, _, rest = relative.partition("/")
        if _VERSION.fullmatch(first):
            found[int(first)] = FileSystems.join(base, first)
            if rest == READY_MARKER:
                marked.add(int(first))
    if marked:
        return {number: folder for number, folder in found.items() if number in marked}, True
    return found, False


def fingerprint(folder: str) -> Fingerprint:
    """What a folder holds, by path, size and time: a folder being copied changes between two looks."""
    listing = FileSystems.match([FileSystems.join(folder.rstrip("/"), "**")])[0].metadata_list
    return tuple(sorted((meta.path, meta.size_in_bytes, meta.last_updated_in_seconds) for meta in listing))


def locate_served(path: str, signature_name: str = DEFAULT_SIGNATURE) -> tuple[ModelLocation, int | None]:
    """The model at `path`, or the highest version in it whose files look like a model: its location,
    and its version number (None for a model that is not a versioned folder)."""
    try:
        return locate_model(path, signature_name), None
    except ModelError as not_a_model:
        versions = version_folders(path)
        if not versions or "--signature_name" in str(not_a_model):
            raise not_a_model from None
    last_error: ModelError | None = None
    for number in sorted(versions, reverse=True):
        try:
            return locate_model(versions[number], signature_name), number
        except ModelError as error:  # half-copied: its files do not yet make a model
            last_error = last_error or error
    assert last_error is not None
    raise last_error


def fits(candidate: ModelSignature, served: ModelSignature) -> bool:
    """Whether a new version takes and returns what the job was built for (names, dtypes, shapes)."""
    return candidate.inputs == served.inputs and candidate.outputs == served.outputs


@dataclass(eq=False)
class Version:
    """One loaded version (number None: a model that is not versioned), and what its calls taught."""

    number: int | None
    folder: str
    path: str
    model: LoadedModel
    files: Fingerprint = ()  # what its folder held when it loaded: refused until that changes, if it fails
    health: ModelHealth = field(default_factory=ModelHealth)
    loaded_at: float = field(default_factory=time.monotonic)

    def passed_probation(self, now: float | None = None) -> bool:
        """Whether it has predicted enough records, or predicted some over a long enough time, to stand alone."""
        predicted = self.health.predicted
        elapsed = (time.monotonic() if now is None else now) - self.loaded_at
        return predicted >= PROBATION_RECORDS or (predicted > 0 and elapsed >= PROBATION_S)


class ServedModel:
    """The model of a job, versioned or not; safe to share by threads. It owns its versions' state."""

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
        self._lock = threading.Lock()
        self._refused: dict[int, Fingerprint] = {}  # refused until their files change
        self._load_failures: dict[int, tuple[Fingerprint, int]] = {}
        self._last_seen: dict[int, Fingerprint] = {}
        self._predecessor: Version | None = None
        self._serving = self._first_version()
        if poll_s is not None and self._serving.number is not None:
            threading.Thread(target=self._poll_forever, name="model-versions", daemon=True).start()

    @property
    def version(self) -> int | None:
        return self._serving.number

    @property
    def loaded(self) -> LoadedModel:
        """The model serving now."""
        return self._serving.model

    def get_signature(self) -> ModelSignature:
        return self._serving.model.get_signature()

    def run(self, work: Callable[[ServedModel, Item], Result], item: Item) -> Result:
        """`work(self, item)`, here: behind Beam's proxy of a model shared by a VM's processes, a call of this
        method runs where the model is, and only `work`, `item` and the result cross between processes."""
        return work(self, item)

    def serving(self) -> tuple[Version, Version | None]:
        """The version serving now and, while it is on probation, the version it replaced."""
        with self._lock:
            return self._serving, self._predecessor

    def _first_version(self) -> Version:
        """The model, or the highest version that loads and fits: a half-copied one is passed over."""
        try:
            location = locate_model(self._path, self._signature_name)
        except ModelError as not_a_model:
            if not version_folders(self._path) or "--signature_name" in str(not_a_model):
                raise
        else:
            return Version(None, self._path, location.path, load_model(location.path, location))
        for number, folder in sorted(version_folders(self._path).items(), reverse=True):
            files = fingerprint(folder)
            self._last_seen[number] = files  # a poll that sees the same files tries it again
            version = self._load(number, folder, files, serving=None)
            if version is not None:
                return version
        raise ModelError(
            f"--model={self._path}: no version loads and fits the signature the job was launched for "
            "(see the log for each version's reason)"
        )

    def _load(self, number: int, folder: str, files: Fingerprint, serving: int | None) -> Version | None:
        """Version `number` loaded and checked, or None (told once in the log) when it cannot serve."""
        try:
            location = locate_model(folder, self._signature_name)
            model = load_model(location.path, location)
        except Exception as error:  # half-copied, corrupt, storage faults
            self._load_failed(number, files, error, serving)
            return None
        if not fits(model.get_signature(), self._signature):
            forget_model(location.path)
            self._refuse(
                number,
                files,
                f"its signature no longer fits the job's input ({_difference(model.get_signature(), self._signature)})",
                serving,
            )
            return None
        self._load_failures.pop(number, None)
        return Version(number, folder, location.path, model, files)

    def _poll_forever(self) -> None:
        assert self._poll_s is not None
        while True:
            time.sleep(self._poll_s)
            self.poll()

    def poll(self) -> int | None:
        """Looks for a higher whole version and, if it loads and fits, serves it on probation; returns the
        version serving after."""
        try:
            self._look_for_higher()
        except Exception as error:  # storage faults: the serving version serves on
            _LOG.warning(
                "%s: looking for a new model version failed, version %s serves on: %s",
                self._path,
                self.version,
                first_line(error),
            )
        return self.version

    def _look_for_higher(self) -> None:
        current, predecessor = self.serving()
        if current.number is None or predecessor is not None:  # one probation at a time
            return
        folders, marked = _listed_versions(self._path)
        for number, folder in sorted(folders.items(), reverse=True):
            if number <= current.number:
                return
            files = fingerprint(folder)
            if not self._may_try(number, files, settled=marked):
                continue
            version = self._load(number, folder, files, current.number)
            if version is None:
                continue
            with self._lock:
                if self._serving is not current or self._predecessor is not None or number in self._refused:
                    promoted = False  # rolled back or switched meanwhile
                else:
                    self._predecessor, self._serving, promoted = current, version, True
            if not promoted:
                forget_model(version.path)
                return
            _LOG.warning(
                "%s: version %d serves from now on, after version %d, which stays loaded until version %d has "
                "predicted %d records",
                self._path,
                number,
                current.number,
                number,
                PROBATION_RECORDS,
            )
            return

    def _may_try(self, number: int, files: Fingerprint, settled: bool) -> bool:
        """Whether to load a version now: not refused for these very files, and (without markers) its
        files the same as at the last poll, so that a folder still being copied is left alone."""
        with self._lock:  # a worker thread's rollback refuses too
            refused = self._refused.get(number)
            if refused is not None:
                if refused == files:
                    return False
                del self._refused[number]  # its files changed: a new try
                self._load_failures.pop(number, None)
        previous = self._last_seen.get(number)
        self._last_seen[number] = files
        return settled or previous == files

    def _load_failed(self, number: int, files: Fingerprint, error: Exception, serving: int | None) -> None:
        earlier_files, tries = self._load_failures.get(number, (files, 0))
        tries = tries + 1 if earlier_files == files else 1
        self._load_failures[number] = (files, tries)
        if tries >= LOAD_TRIES:
            self._refuse(number, files, f"it failed to load {tries} times ({first_line(error)})", serving)
            return
        _LOG.warning(
            "%s: version %d does not load (try %d of %d), %s: %s",
            self._path,
            number,
            tries,
            LOAD_TRIES,
            f"version {serving} serves on" if serving is not None else "a lower version serves",
            first_line(error),
        )

    def _refuse(self, number: int, files: Fingerprint, reason: str, serving: int | None) -> None:
        with self._lock:
            self._refused[number] = files
        serves_on = f"version {serving} serves on" if serving is not None else "a lower version serves"
        _LOG.warning(
            "%s: version %d is refused: %s; %s, and version %d is tried again when its files change",
            self._path,
            number,
            reason,
            serves_on,
            number,
        )

    def confirm(self, version: Version) -> None:
        """Ends `version`'s probation: its predecessor is let go, with its memory."""
        with self._lock:
            if self._serving is not version or self._predecessor is None:
                return
            predecessor, self._predecessor = self._predecessor, None
        forget_model(predecessor.path)
        _LOG.warning(
            "%s: version %s predicted %d records and passed its probation; version %s is let go",
            self._path,
            version.number,
            version.health.predicted,
            predecessor.number,
        )

    def roll_back(self, version: Version, reason: str) -> None:
        """Serves `version`'s predecessor again, and refuses `version` until its files change."""
        assert version.number is not None
        with self._lock:
            if self._serving is not version or self._predecessor is None:
                return
            self._serving, self._predecessor = self._predecessor, None
            self._refused[version.number] = version.files  # no storage call here: nothing may fail the bundle
            serving = self._serving.number
        forget_model(version.path)
        _LOG.warning(
            "%s: version %d is rolled back: %s; version %s serves again, and version %d is tried again when its "
            "files change",
            self._path,
            version.number,
            reason,
            serving,
            version.number,
        )


def _difference(candidate: ModelSignature, served: ModelSignature) -> str:
    def described(signature: ModelSignature) -> str:
        inputs = ", ".join(f"{spec.name} {spec.dtype} {spec.shape}" for spec in signature.inputs)
        outputs = ", ".join(f"{spec.name} {spec.dtype} {spec.shape}" for spec in signature.outputs)
        return f"inputs {inputs}; outputs {outputs}"

    return f"it has {described(candidate)}, the job was launched for {described(served)}"


_SERVED: dict[tuple[str, str, str], ServedModel] = {}
_SERVING = threading.Lock()


def serve(
    path: str,
    signature: ModelSignature,
    poll_s: float | None = None,
    signature_name: str = DEFAULT_SIGNATURE,
    owner: str = "",
) -> ServedModel:
    """The model that `owner` (a handler, by its id) serves at `path` in this process, made once: Beam may
    load a handler's model again in a process (a runner re-creating its workers' functions), and a new
    version must not then bypass its checks. Another owner gets a model of its own, state and all."""
    key = (owner, path, signature_name)
    with _SERVING:
        if key not in _SERVED:
            _SERVED[key] = ServedModel(path, signature, poll_s, signature_name)
        return _SERVED[key]
