"""TensorFlow models behind one interface: a signature (input shape, classes) and a batch predict.

Three formats are recognised here and only here: a TF2 SavedModel directory, a Keras `.keras`
file (loaded with safe_mode, so no arbitrary code), and a legacy TF1 checkpoint prefix that
follows the 2017 sample's convention (collections `inputs` {image, key} and `outputs`
{key, scores}). Remote models (gs://...) are copied to local disk first through Beam's
filesystems, because TensorFlow's own loaders only read local paths reliably.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import json
import math
import os
import posixpath
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.options import first_line

# Names a multi-input or multi-output signature may use for the image and the scores.
_IMAGE_INPUT_NAMES = ("image", "images", "input", "inputs", "x")
_KEY_INPUT_NAMES = ("key", "keys")
_SCORE_OUTPUT_NAMES = ("scores", "probabilities", "probs", "predictions", "output_0", "outputs", "logits")


class ModelError(ValueError):
    """The model cannot be used: the message says what is wrong and what would fix it."""


class ModelFormat(enum.Enum):
    SAVED_MODEL = "TF2 SavedModel"
    KERAS = "Keras .keras file"
    TF1_CHECKPOINT = "TF1 checkpoint"


@dataclass(frozen=True)
class ModelSignature:
    """What the pipeline needs to know of a model before any record is parsed."""

    format: ModelFormat
    input_shape: tuple[int, ...]  # one example, e.g. (784,) or (28, 28, 1)
    num_classes: int

    @property
    def width(self) -> int:
        """Values per record: the product of the input shape."""
        return math.prod(self.input_shape)


class LoadedModel(Protocol):
    signature: ModelSignature

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Scores of shape (n, num_classes) for flat float32 images of shape (n, width)."""


@contextlib.contextmanager
def _native_stderr_silenced():
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


def import_tensorflow():
    """TensorFlow, imported without its start-up lines about absent CUDA drivers on CPU machines.

    Python errors still surface as exceptions; only native log lines are dropped.
    """
    if "tensorflow" not in sys.modules:
        with _native_stderr_silenced():
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()  # the CUDA probe logs here, once
    return importlib.import_module("tensorflow")


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def detect_format(path: str) -> ModelFormat:
    """Tells a model's format from what exists at `path` (local or any Beam filesystem)."""
    path = path.rstrip("/")
    if path.endswith((".h5", ".hdf5")):
        raise ModelError(
            f"--model={path}: HDF5 Keras files are not supported (they can run code on load); "
            "re-save the model with model.save('model.keras')"
        )
    if path.endswith(".keras"):
        if not FileSystems.exists(path):
            raise ModelError(f"--model={path}: no such .keras file")
        return ModelFormat.KERAS
    if FileSystems.exists(path + ".meta"):
        return ModelFormat.TF1_CHECKPOINT
    if FileSystems.exists(FileSystems.join(path, "saved_model.pb")):
        return ModelFormat.SAVED_MODEL
    if FileSystems.exists(path) or FileSystems.exists(path + "/"):
        raise ModelError(
            f"--model={path}: not a SavedModel directory (no saved_model.pb), a .keras file, "
            "or a TF1 checkpoint prefix (no .meta file beside it)"
        )
    raise ModelError(f"--model={path}: nothing exists at this path")


_FILES_OF_FORMAT = {
    ModelFormat.KERAS: ("",),
    ModelFormat.TF1_CHECKPOINT: (".*",),
    ModelFormat.SAVED_MODEL: ("/**",),
}


def copy_to_local(path: str, model_format: ModelFormat, target_dir: str) -> str:
    """Copies the remote model at `path` into target_dir through Beam's filesystems; returns its local path."""
    path = path.rstrip("/")
    patterns = [path + suffix for suffix in _FILES_OF_FORMAT[model_format]]
    files = sorted({meta.path for result in FileSystems.match(patterns) for meta in result.metadata_list})
    if not files:
        raise ModelError(f"--model={path}: no files found to copy")
    base = posixpath.dirname(path)
    for remote in files:
        local = os.path.join(target_dir, *remote[len(base) :].lstrip("/").split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with FileSystems.open(remote, compression_type="uncompressed") as reader, open(local, "wb") as writer:
            while chunk := reader.read(1 << 22):
                writer.write(chunk)
    return os.path.join(target_dir, posixpath.basename(path))


def _static_shape(shape, what: str, path: str) -> tuple[int, ...]:
    dims = tuple(shape)[1:]
    if not dims or any(dim is None for dim in dims):
        raise ModelError(
            f"--model={path}: the {what} shape {tuple(shape)} must be fully known after the batch "
            "dimension so records can be checked against it"
        )
    return tuple(int(dim) for dim in dims)


def _classes(shape, path: str) -> int:
    dims = tuple(shape)
    if len(dims) != 2 or dims[1] is None:
        raise ModelError(f"--model={path}: the output shape {dims} is not (batch, classes)")
    return int(dims[1])


def _pick(names, preferred: tuple[str, ...], what: str, path: str) -> str:
    names = list(names)
    if len(names) == 1:
        return names[0]
    for name in preferred:
        if name in names:
            return name
    raise ModelError(
        f"--model={path}: cannot tell which {what} to use among {sorted(names)}; name it one of {preferred}"
    )


class SavedModel:
    """A TF2 SavedModel called through its `serving_default` signature."""

    def __init__(self, local_path: str, display_path: str):
        tf = import_tensorflow()

        try:
            self._loaded = tf.saved_model.load(local_path)
        except Exception as error:  # TensorFlow raises many types for a broken model
            raise ModelError(f"--model={display_path}: the SavedModel does not load: {first_line(error)}") from None
        signatures = getattr(self._loaded, "signatures", {})
        if "serving_default" not in signatures:
            raise ModelError(f"--model={display_path}: the SavedModel has no 'serving_default' signature")
        self._function = signatures["serving_default"]
        inputs = self._function.structured_input_signature[1]
        outputs = self._function.structured_outputs
        self._image_name = _pick(
            [name for name in inputs if name not in _KEY_INPUT_NAMES] or inputs,
            _IMAGE_INPUT_NAMES,
            "input",
            display_path,
        )
        self._key_name = next((name for name in _KEY_INPUT_NAMES if name in inputs and len(inputs) > 1), None)
        self._output_name = _pick(outputs, _SCORE_OUTPUT_NAMES, "output", display_path)
        image_spec = inputs[self._image_name]
        if not image_spec.dtype.is_floating:
            raise ModelError(
                f"--model={display_path}: input '{self._image_name}' is {image_spec.dtype.name}, not a float"
            )
        self._dtype = image_spec.dtype
        self._key_dtype = inputs[self._key_name].dtype if self._key_name else None
        self.signature = ModelSignature(
            ModelFormat.SAVED_MODEL,
            _static_shape(image_spec.shape, "input", display_path),
            _classes(outputs[self._output_name].shape, display_path),
        )

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        feed = {self._image_name: tf.constant(images.reshape((-1, *self.signature.input_shape)), dtype=self._dtype)}
        if self._key_name:
            feed[self._key_name] = tf.constant(keys, dtype=self._key_dtype)
        return self._function(**feed)[self._output_name].numpy().astype(np.float32, copy=False)


class KerasFile:
    """A `.keras` file, loaded with safe_mode=True and called through one traced function."""

    def __init__(self, local_path: str, display_path: str):
        tf = import_tensorflow()
        import keras

        try:
            model = keras.saving.load_model(local_path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a refused or broken file
            raise ModelError(
                f"--model={display_path}: the .keras file does not load safely: {first_line(error)}"
            ) from None
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(f"--model={display_path}: the Keras model must have one input and one output")
        input_shape = _static_shape(model.inputs[0].shape, "input", display_path)
        self.signature = ModelSignature(ModelFormat.KERAS, input_shape, _classes(model.outputs[0].shape, display_path))
        spec = tf.TensorSpec((None, *input_shape), model.inputs[0].dtype)
        self._call = tf.function(lambda batch: model(batch, training=False), input_signature=[spec])
        self._dtype = model.inputs[0].dtype

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        batch = tf.constant(images.reshape((-1, *self.signature.input_shape)), dtype=self._dtype)
        return np.asarray(self._call(batch)).astype(np.float32, copy=False)


class Tf1Checkpoint:
    """A TF1 checkpoint of the 2017 sample's convention, run in its own graph and session."""

    def __init__(self, prefix: str, display_path: str):
        tf = import_tensorflow()

        self._graph = tf.Graph()
        with self._graph.as_default():
            try:
                saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            except Exception as error:  # TensorFlow raises many types for a broken graph
                raise ModelError(f"--model={display_path}: {prefix}.meta does not load: {first_line(error)}") from None
            inputs = self._collection("inputs", display_path)
            outputs = self._collection("outputs", display_path)
            image_name = inputs.get("image") or inputs.get("images")
            scores_name = outputs.get("scores")
            if not image_name or not scores_name:
                raise ModelError(
                    f"--model={display_path}: collections must name inputs['image'] and outputs['scores'] "
                    f"(found inputs {sorted(inputs)}, outputs {sorted(outputs)})"
                )
            self._image = self._graph.get_tensor_by_name(image_name)
            self._key = self._graph.get_tensor_by_name(inputs["key"]) if "key" in inputs else None
            self._scores = self._graph.get_tensor_by_name(scores_name)
            self._session = tf.compat.v1.Session(graph=self._graph)
            try:
                saver.restore(self._session, prefix)
            except Exception as error:  # NotFoundError, DataLossError, ...
                self._session.close()
                raise ModelError(
                    f"--model={display_path}: the checkpoint's weights do not restore: {first_line(error)}"
                ) from None
        self._graph.finalize()
        self.signature = ModelSignature(
            ModelFormat.TF1_CHECKPOINT,
            _static_shape(self._image.shape.as_list(), "input", display_path),
            _classes(self._scores.shape.as_list(), display_path),
        )

    def _collection(self, name: str, display_path: str) -> dict:
        values = self._graph.get_collection(name)
        if len(values) != 1:
            raise ModelError(f"--model={display_path}: the graph has no '{name}' collection")
        value = values[0]
        return json.loads(value.decode("utf-8") if isinstance(value, bytes) else value)

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        feed = {self._image: images.reshape((-1, *self.signature.input_shape))}
        if self._key is not None:
            feed[self._key] = keys
        return np.asarray(self._session.run(self._scores, feed_dict=feed), dtype=np.float32)


def predict_checked(model: LoadedModel, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The model's scores, refused unless they are one row of num_classes per record."""
    scores = model.predict(images, keys)
    if scores.shape != (len(images), model.signature.num_classes):
        raise ValueError(f"model returned scores of shape {scores.shape} for a batch of {len(images)}")
    return scores


def check_predicts(model: LoadedModel, display_path: str) -> None:
    """Scores one record of zeros, so that a model that cannot predict at all (an extra required
    input, scores of the wrong shape) is refused at launch instead of failing every batch."""
    images = np.zeros((1, model.signature.width), dtype=np.float32)
    try:
        predict_checked(model, images, np.zeros(1, dtype=np.int64))
    except Exception as error:  # whatever the model raises
        raise ModelError(f"--model={display_path}: the model fails on a record of zeros: {first_line(error)}") from None


_LOADED: dict[str, LoadedModel] = {}
_LOADING = threading.Lock()


def load_model(path: str, model_format: ModelFormat | None = None) -> LoadedModel:
    """Loads the model at `path` (local or remote), once per process; the format is detected
    unless the caller already knows it.

    Launch-time validation loads the model to learn its signature; on a local runner the
    workers live in the same process and reuse it instead of loading it again.
    """
    with _LOADING:
        if path not in _LOADED:
            _LOADED[path] = _load_uncached(path, model_format or detect_format(path))
        return _LOADED[path]


_LOADERS = {
    ModelFormat.KERAS: KerasFile,
    ModelFormat.TF1_CHECKPOINT: Tf1Checkpoint,
    ModelFormat.SAVED_MODEL: SavedModel,
}


def _load_uncached(path: str, model_format: ModelFormat) -> LoadedModel:
    loader = _LOADERS[model_format]
    if _is_local(path):
        return loader(path.rstrip("/"), path)
    # TensorFlow reads a model whole into memory, so the local copy can go once it is loaded.
    with tempfile.TemporaryDirectory(prefix="model-") as target:
        return loader(copy_to_local(path, model_format, target), path)
