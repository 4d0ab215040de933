"""TensorFlow models behind one interface: their signature and a batch call by input name.

A TF2 SavedModel is called through its `serving_default` signature; a Keras `.keras` file is
loaded with safe_mode (no arbitrary code) and called through one traced function; a TF1
checkpoint of the 2017 sample's convention (JSON collections `inputs` and `outputs` naming its
tensors) runs in its own graph and session. Remote models (gs://...) are copied to local disk
first, because TensorFlow's own loaders only read local paths reliably. Which format a path holds
is told by `model.files`; launch checks that need only the signature read it without
the weights (`model.signatures`).

`predict` takes one batch-major array per input name and returns one per output name; only
methods are called on a loaded model, so that it also works behind RunInference's proxy when
one copy is shared by the processes of a worker (GPU workers, and models too large for a copy per process).
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from typing import Any, Protocol

import numpy as np

from pipeline.errors import ModelError, OutputMismatch, first_line
from pipeline.model.files import DEFAULT_SIGNATURE, ModelFormat, ModelLocation, copy_to_local, locate_model
from pipeline.model.runtime import import_tensorflow
from pipeline.model.signatures import (
    ModelSignature,
    keras_specs,
    missing_signature,
    read_signature,
    tf1_collection,
    tf1_specs,
)


class LoadedModel(Protocol):
    def get_signature(self) -> ModelSignature: ...

    def predict(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One batch-major array per output name, for one batch-major array per input name."""


def _constants(tf: Any, features: dict[str, np.ndarray], dtypes: dict[str, Any]) -> dict[str, Any]:
    """The batch's arrays as tensors of the dtypes the model's inputs take."""
    return {name: tf.constant(array, dtype=dtypes[name]) for name, array in features.items()}


class _Model:
    signature: ModelSignature

    def get_signature(self) -> ModelSignature:
        return self.signature

    def predict(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


class SavedModel(_Model):
    """A TF2 SavedModel called through one of its signatures (`serving_default` unless told otherwise)."""

    def __init__(self, local_path: str, location: ModelLocation):
        tf = import_tensorflow()

        try:
            self._loaded = tf.saved_model.load(local_path)
        except Exception as error:  # TensorFlow raises many types for a broken model
            raise ModelError(f"--model={location.given}: the SavedModel does not load: {first_line(error)}") from None
        signatures = getattr(self._loaded, "signatures", {})
        if location.signature_name not in signatures:
            raise missing_signature(location, sorted(signatures))
        self._function = signatures[location.signature_name]
        self.signature = read_signature(dataclasses.replace(location, path=local_path))
        self._dtypes = {spec.name: tf.dtypes.as_dtype(spec.dtype) for spec in self.signature.inputs}

    def predict(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = _constants(import_tensorflow(), features, self._dtypes)
        return {name: tensor.numpy() for name, tensor in self._function(**feed).items()}


class KerasFile(_Model):
    """A `.keras` file, loaded with safe_mode=True and called through one traced function."""

    def __init__(self, local_path: str, location: ModelLocation):
        tf = import_tensorflow()
        import keras

        try:
            model = keras.saving.load_model(local_path, compile=False, safe_mode=True)
        except Exception as error:  # Keras raises many types for a refused or broken file
            raise ModelError(
                f"--model={location.given}: the .keras file does not load safely: {first_line(error)}"
            ) from None
        inputs, outputs = keras_specs(model)
        self.signature = ModelSignature(ModelFormat.KERAS, inputs, outputs, location.given)
        specs = {spec.name: tf.TensorSpec((None, *spec.shape), tf.dtypes.as_dtype(spec.dtype)) for spec in inputs}
        output_names = [spec.name for spec in outputs]

        def call(features: dict[str, Any]) -> dict[str, Any]:
            result = model(features if len(features) > 1 else next(iter(features.values())), training=False)
            if isinstance(result, dict):
                return result
            results = result if isinstance(result, (list, tuple)) else [result]
            return dict(zip(output_names, results, strict=True))

        self._call = tf.function(call, input_signature=[specs])
        self._dtypes = {name: spec.dtype for name, spec in specs.items()}

    def predict(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = _constants(import_tensorflow(), features, self._dtypes)
        return {name: np.asarray(tensor) for name, tensor in self._call(feed).items()}


class Tf1Checkpoint(_Model):
    """A TF1 checkpoint of the 2017 sample's convention, run in its own graph and session."""

    def __init__(self, prefix: str, location: ModelLocation):
        tf = import_tensorflow()

        self._graph = tf.Graph()
        with self._graph.as_default():
            try:
                saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            except Exception as error:  # TensorFlow raises many types for a broken graph
                raise ModelError(
                    f"--model={location.given}: {prefix}.meta does not load: {first_line(error)}"
                ) from None
            inputs = tf1_collection(self._graph, "inputs", location.given)
            outputs = tf1_collection(self._graph, "outputs", location.given)
            self.signature = ModelSignature(
                ModelFormat.TF1_CHECKPOINT,
                tf1_specs(self._graph, inputs, location.given),
                tf1_specs(self._graph, outputs, location.given),
                location.given,
            )
            self._inputs = {name: self._graph.get_tensor_by_name(tensor) for name, tensor in inputs.items()}
            self._outputs = {name: self._graph.get_tensor_by_name(tensor) for name, tensor in outputs.items()}
            self._session = tf.compat.v1.Session(graph=self._graph)
            try:
                saver.restore(self._session, prefix)
            except Exception as error:  # NotFoundError, DataLossError, ...
                self._session.close()
                raise ModelError(
                    f"--model={location.given}: the checkpoint's weights do not restore: {first_line(error)}"
                ) from None
        self._graph.finalize()

    def predict(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        shapes = {spec.name: spec.shape for spec in self.signature.inputs}
        feed = {self._inputs[name]: _as_shaped(array, shapes[name]) for name, array in features.items()}
        return {name: np.asarray(value) for name, value in self._session.run(self._outputs, feed_dict=feed).items()}


def _as_shaped(array: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    """A batch in the graph's instance shape, where the shape is fully known (the 2017 graph takes flat images)."""
    dims = [dim for dim in shape if dim is not None]
    return array.reshape((-1, *dims)) if len(dims) == len(shape) else array


def predict_checked(
    model: LoadedModel, features: dict[str, np.ndarray], names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The named outputs for a batch, refused unless each has one row per instance."""
    return checked_outputs(model.predict(features), len(next(iter(features.values()))), names)


def checked_outputs(outputs: dict[str, np.ndarray], count: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The named outputs of a call on `count` instances, refused unless each has one row per instance."""
    missing = [name for name in names if name not in outputs]
    if missing:
        raise OutputMismatch(f"the model returned no output {missing} (it returned {sorted(outputs)})")
    for name in names:
        if outputs[name].shape[:1] != (count,):
            raise OutputMismatch(f"output '{name}' has shape {outputs[name].shape} for a batch of {count}")
    return {name: _plain(outputs[name]) for name in names}


def _plain(array: np.ndarray) -> np.ndarray:
    """bfloat16 and float16 outputs as float32: NumPy alone cannot test or print bfloat16 values."""
    if array.dtype.name in ("bfloat16", "float16") or array.dtype.name.startswith("float8"):
        return array.astype(np.float32)
    return array


_LOADED: dict[str, LoadedModel] = {}
_LOADING = threading.Lock()


def load_model(path: str, location: ModelLocation | None = None) -> LoadedModel:
    """Loads the model at `path` (local or remote), once per process; the format is detected
    unless the caller already knows it.

    Launch-time validation of a local run loads the model to check it; the local workers live
    in the same process and reuse it instead of loading it again.
    """
    key = f"{path}#{location.signature_name if location else DEFAULT_SIGNATURE}"  # one model per signature
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = _load_uncached(location or locate_model(path))
        return _LOADED[key]


def forget_model(path: str) -> None:
    """Lets a model that is no longer served go (a streaming job's earlier version): its memory with it."""
    with _LOADING:
        for key in [key for key in _LOADED if key.rsplit("#", 1)[0] == path]:
            del _LOADED[key]


_LOADERS = {
    ModelFormat.KERAS: KerasFile,
    ModelFormat.TF1_CHECKPOINT: Tf1Checkpoint,
    ModelFormat.SAVED_MODEL: SavedModel,
}


def _load_uncached(location: ModelLocation) -> LoadedModel:
    loader = _LOADERS[location.format]
    if location.is_local:
        return loader(location.path, location)
    # TensorFlow reads a model whole into memory, so the local copy can go once it is loaded.
    with tempfile.TemporaryDirectory(prefix="model-") as target:
        return loader(copy_to_local(location, target), location)
