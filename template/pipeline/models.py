"""TensorFlow models behind one interface: their signature and a batch predict.

A TF2 SavedModel is called through its `serving_default` signature; a Keras `.keras` file is
loaded with safe_mode (no arbitrary code) and called through one traced function; a TF1
checkpoint of the 2017 sample's convention (collections `inputs` {image, key} and `outputs`
{key, scores}) runs in its own graph and session. Remote models (gs://...) are copied to local
disk first, because TensorFlow's own loaders only read local paths reliably. Which format a
path holds is told by `pipeline.model_files`; launch checks that need only the signature read
it without the weights (`pipeline.signatures`).
"""

from __future__ import annotations

import tempfile
import threading
from typing import Protocol

import numpy as np

from pipeline.model_files import ModelError, ModelFormat, ModelLocation, copy_to_local, locate_model
from pipeline.options import first_line
from pipeline.signatures import ModelSignature, keras_specs, tf1_collection, tf1_specs
from pipeline.signatures import read_signature as _read_signature
from pipeline.tensorflow_runtime import import_tensorflow


class LoadedModel(Protocol):
    signature: ModelSignature

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Scores of shape (n, num_classes) for flat float32 images of shape (n, width)."""


class SavedModel:
    """A TF2 SavedModel called through its `serving_default` signature."""

    def __init__(self, local_path: str, location: ModelLocation):
        tf = import_tensorflow()

        try:
            self._loaded = tf.saved_model.load(local_path)
        except Exception as error:  # TensorFlow raises many types for a broken model
            raise ModelError(f"--model={location.given}: the SavedModel does not load: {first_line(error)}") from None
        signatures = getattr(self._loaded, "signatures", {})
        if "serving_default" not in signatures:
            raise ModelError(f"--model={location.given}: the SavedModel has no 'serving_default' signature")
        self._function = signatures["serving_default"]
        self.signature = _read_signature(ModelLocation(location.format, local_path, location.given))
        self._dtypes = {spec.name: tf.dtypes.as_dtype(spec.dtype) for spec in self.signature.inputs}

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        image = self.signature.image_input
        feed = {
            image.name: tf.constant(images.reshape((-1, *self.signature.input_shape)), dtype=self._dtypes[image.name])
        }
        if key := self.signature.key_input:
            feed[key] = tf.constant(keys, dtype=self._dtypes[key])
        outputs = self._function(**feed)
        return outputs[self.signature.scores_output.name].numpy().astype(np.float32, copy=False)


class KerasFile:
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
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(f"--model={location.given}: the Keras model must have one input and one output")
        inputs, outputs = keras_specs(model)
        self.signature = ModelSignature(ModelFormat.KERAS, inputs, outputs, location.given)
        spec = tf.TensorSpec((None, *self.signature.input_shape), model.inputs[0].dtype)
        self._call = tf.function(lambda batch: model(batch, training=False), input_signature=[spec])
        self._dtype = model.inputs[0].dtype

    def predict(self, images: np.ndarray, keys: np.ndarray) -> np.ndarray:
        tf = import_tensorflow()

        batch = tf.constant(images.reshape((-1, *self.signature.input_shape)), dtype=self._dtype)
        return np.asarray(self._call(batch)).astype(np.float32, copy=False)


class Tf1Checkpoint:
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
                tf1_specs(self._graph, inputs),
                tf1_specs(self._graph, outputs),
                location.given,
            )
            self._image = self._graph.get_tensor_by_name(inputs[self.signature.image_input.name])
            key = self.signature.key_input
            self._key = self._graph.get_tensor_by_name(inputs[key]) if key else None
            self._scores = self._graph.get_tensor_by_name(outputs[self.signature.scores_output.name])
            self._session = tf.compat.v1.Session(graph=self._graph)
            try:
                saver.restore(self._session, prefix)
            except Exception as error:  # NotFoundError, DataLossError, ...
                self._session.close()
                raise ModelError(
                    f"--model={location.given}: the checkpoint's weights do not restore: {first_line(error)}"
                ) from None
        self._graph.finalize()

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
    """Scores one record of zeros, so that a model that cannot predict at all (scores of the
    wrong shape, an op that cannot run) is refused at launch instead of failing every batch."""
    images = np.zeros((1, model.signature.width), dtype=np.float32)
    try:
        predict_checked(model, images, np.zeros(1, dtype=np.int64))
    except Exception as error:  # whatever the model raises
        raise ModelError(f"--model={display_path}: the model fails on a record of zeros: {first_line(error)}") from None


_LOADED: dict[str, LoadedModel] = {}
_LOADING = threading.Lock()


def load_model(path: str, location: ModelLocation | None = None) -> LoadedModel:
    """Loads the model at `path` (local or remote), once per process; the format is detected
    unless the caller already knows it.

    Launch-time validation of a local run loads the model to check it; the local workers live
    in the same process and reuse it instead of loading it again.
    """
    with _LOADING:
        if path not in _LOADED:
            _LOADED[path] = _load_uncached(location or locate_model(path))
        return _LOADED[path]


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
