"""Where a model's files are and which format they are in: detection lives here and only here.

Three formats, local or on any Beam filesystem (gs://):
* a TF2 SavedModel directory (holding `saved_model.pb`);
* a Keras `.keras` file;
* a TF1 checkpoint in the 2017 sample's convention, given as its prefix (`.../export`, with
  `export.meta` beside it) or as the folder holding it, as the sample's own command did
  (`--model $BUCKET/model` after `gsutil cp export* $BUCKET/model/`): the folder's `checkpoint`
  file names the prefix, or the folder holds exactly one `.meta` file.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import posixpath
import re
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from pipeline.errors import ModelError


class ModelFormat(enum.Enum):
    SAVED_MODEL = "TF2 SavedModel"
    KERAS = "Keras .keras file"
    TF1_CHECKPOINT = "TF1 checkpoint"


DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class ModelLocation:
    """A model's format and the path its loader takes (a TF1 checkpoint's prefix, not its folder), and the
    signature to call (SavedModels may have several; the other formats have only the default)."""

    format: ModelFormat
    path: str
    given: str  # the path as the user gave it, for messages
    signature_name: str = DEFAULT_SIGNATURE

    @property
    def is_local(self) -> bool:
        return FileSystems.get_scheme(self.path) in (None, "file")


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as handle:
        return handle.read()


def _listing(folder: str) -> list[str]:
    pattern = FileSystems.join(folder, "*")
    return sorted(meta.path for meta in FileSystems.match([pattern])[0].metadata_list)


_CHECKPOINT_PATH = re.compile(r'^model_checkpoint_path:\s*"(?P<path>[^"]+)"', re.M)


def _checkpoint_in_folder(folder: str, given: str) -> str | None:
    """The prefix of the TF1 checkpoint a folder holds, or None if it holds none."""
    state = FileSystems.join(folder, "checkpoint")
    if FileSystems.exists(state):
        match = _CHECKPOINT_PATH.search(read_bytes(state).decode("utf-8", "replace"))
        if match:
            # Paths in a `checkpoint` file are often absolute on the machine that trained the
            # model; the files sit beside it here, as TensorFlow's own readers assume too.
            prefix = FileSystems.join(folder, posixpath.basename(match["path"].replace(os.sep, "/")))
            if FileSystems.exists(prefix + ".meta"):
                return prefix
    metas = [path for path in _listing(folder) if path.endswith(".meta")]
    if len(metas) > 1:
        names = ", ".join(posixpath.basename(path) for path in metas)
        raise ModelError(f"--model={given}: the folder holds several TF1 checkpoints ({names}); give one prefix")
    return metas[0][: -len(".meta")] if metas else None


def locate_model(path: str, signature_name: str = DEFAULT_SIGNATURE) -> ModelLocation:
    """Tells a model's format from what exists at `path` (local or any Beam filesystem)."""
    location = _locate(path)
    if signature_name == DEFAULT_SIGNATURE:
        return location
    if location.format is not ModelFormat.SAVED_MODEL:
        raise ModelError(
            f"--signature_name={signature_name}: a {location.format.value} has only the '{DEFAULT_SIGNATURE}' "
            "signature; other signatures are a SavedModel's"
        )
    return dataclasses.replace(location, signature_name=signature_name)


def _locate(path: str) -> ModelLocation:
    given = path
    path = path.rstrip("/")
    if path.endswith((".h5", ".hdf5")):
        raise ModelError(
            f"--model={given}: HDF5 Keras files are not supported (they can run code on load); "
            "re-save the model with model.save('model.keras')"
        )
    if path.endswith(".keras"):
        if not FileSystems.exists(path):
            raise ModelError(f"--model={given}: no such .keras file")
        return ModelLocation(ModelFormat.KERAS, path, given)
    if FileSystems.exists(path + ".meta"):
        return ModelLocation(ModelFormat.TF1_CHECKPOINT, path, given)
    if FileSystems.exists(FileSystems.join(path, "saved_model.pb")):
        return ModelLocation(ModelFormat.SAVED_MODEL, path, given)
    prefix = _checkpoint_in_folder(path, given)
    if prefix is not None:
        return ModelLocation(ModelFormat.TF1_CHECKPOINT, prefix, given)
    if FileSystems.exists(path) or FileSystems.exists(path + "/") or _listing(path):
        raise ModelError(
            f"--model={given}: not a SavedModel directory (no saved_model.pb), a .keras file, "
            "or a TF1 checkpoint (no .meta file in the folder or beside the prefix)"
        )
    raise ModelError(f"--model={given}: nothing exists at this path")


_FILES_OF_FORMAT = {
    ModelFormat.KERAS: ("",),
    ModelFormat.TF1_CHECKPOINT: (".*",),
    ModelFormat.SAVED_MODEL: ("/**",),
}


def model_files(location: ModelLocation) -> dict[str, int]:
    """{path: size in bytes} of every file a model's loader reads (all of a SavedModel's folder, a
    checkpoint's prefix.*, the .keras file), local or remote: what a copy copies and a load reads."""
    patterns = [location.path + suffix for suffix in _FILES_OF_FORMAT[location.format]]
    return {meta.path: meta.size_in_bytes for result in FileSystems.match(patterns) for meta in result.metadata_list}


def copy_to_local(location: ModelLocation, target_dir: str) -> str:
    """Copies a remote model into target_dir through Beam's filesystems; returns its local path.

    TensorFlow's own loaders read only local paths reliably.
    """
    path = location.path
    files = sorted(model_files(location))
    if not files:
        raise ModelError(f"--model={location.given}: no files found to copy")
    base = posixpath.dirname(path)
    for remote in files:
        local = os.path.join(target_dir, *remote[len(base) :].lstrip("/").split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with FileSystems.open(remote, compression_type="uncompressed") as reader, open(local, "wb") as writer:
            while chunk := reader.read(1 << 22):
                writer.write(chunk)
    return os.path.join(target_dir, posixpath.basename(path))
