"""A model's serving signature, read without its weights.

The launch needs only the signature (input names, dtypes and shapes; output names and shapes)
to check the records and derive the output schema, and on Dataflow the launcher VM should not
copy and load a model of many gigabytes to learn it. Each format allows that:

* SavedModel: the `serving_default` entry of `saved_model.pb`'s signature_def (one small file);
* TF1 checkpoint: the graph in the `.meta` file, imported without restoring any variable;
* `.keras`: `config.json` read from the zip (the weights member is never read), the architecture
  built with uninitialised variables (no memory for weights), safe_mode on.

Loading a model for prediction (`model.loading`) yields the same signature.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.compat import variables_without_memory
from pipeline.errors import ModelError, first_line
from pipeline.model.files import DEFAULT_SIGNATURE, ModelFormat, ModelLocation, read_bytes
from pipeline.model.runtime import import_tensorflow


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: dtype name as NumPy/TensorFlow spell it ('float32', 'string'),
    and the shape of one instance (the batch dimension removed; None where any size goes)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    @property
    def is_floating(self) -> bool:
        return self.dtype in ("float16", "bfloat16", "float32", "float64")

    @property
    def size(self) -> int | None:
        """Values per instance, when the shape is fully known."""
        dims = [dim for dim in self.shape if dim is not None]
        return math.prod(dims) if len(dims) == len(self.shape) else None


@dataclass(frozen=True)
class ModelSignature:
    """What the pipeline needs to know of a model before any record is parsed."""

    format: ModelFormat
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    path: str = ""  # as the user gave it, for messages

    def input(self, name: str) -> TensorSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)


def _dims(shape: Any) -> tuple[int | None, ...]:
    """The per-instance dims of a batch-major shape given as ints/None (-1 for unknown)."""
    dims = tuple(None if dim is None or int(dim) < 0 else int(dim) for dim in shape)
    return dims[1:]


def _saved_model_signature(location: ModelLocation) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    tf = import_tensorflow()
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(read_bytes(FileSystems.join(location.path, "saved_model.pb")))
    except Exception as error:  # a truncated or foreign file: DecodeError and friends
        raise ModelError(f"--model={location.given}: the SavedModel does not load: {first_line(error)}") from None
    wanted = location.signature_name
    signature = next(
        (graph.signature_def[wanted] for graph in proto.meta_graphs if wanted in graph.signature_def), None
    )
    if signature is None:
        present = sorted({name for graph in proto.meta_graphs for name in graph.signature_def})
        raise missing_signature(location, present)

    def specs(infos: Any) -> tuple[TensorSpec, ...]:
        result = []
        for name, info in sorted(infos.items()):
            if info.WhichOneof("encoding") != "name":
                raise ModelError(
                    f"--model={location.given}: tensor '{name}' is sparse or ragged; only dense tensors are fed"
                )
            shape = None if info.tensor_shape.unknown_rank else [dim.size for dim in info.tensor_shape.dim]
            if shape is None or not shape:
                raise ModelError(
                    f"--model={location.given}: signature tensor '{name}' has no batch dimension (shape {shape})"
                )
            result.append(TensorSpec(name, tf.dtypes.as_dtype(info.dtype).name, _dims(shape)))
        return tuple(result)

    return specs(signature.inputs), specs(signature.outputs)


def missing_signature(location: ModelLocation, present: list[str]) -> ModelError:
    """The one-line error of a signature the SavedModel does not have, naming those it has."""
    has = ", ".join(name for name in present if not name.startswith("__")) or "none"
    name = location.signature_name
    if name == DEFAULT_SIGNATURE:
        return ModelError(f"--model={location.given}: the SavedModel has no '{name}' signature; it has {has}")
    return ModelError(
        f"--signature_name={name}: the SavedModel {location.given} has no '{name}' signature; it has {has}"
    )


def tf1_collection(graph: Any, name: str, given: str) -> dict[str, str]:
    """A JSON collection of the seed's convention: {'image': 'Placeholder:0', ...}."""
    values = graph.get_collection(name)
    if len(values) != 1:
        raise ModelError(f"--model={given}: the graph has no '{name}' collection")
    value = values[0]
    try:
        return dict(json.loads(value.decode("utf-8") if isinstance(value, bytes) else value))
    except (ValueError, TypeError):
        raise ModelError(f"--model={given}: the '{name}' collection is not a JSON object of tensor names") from None


def tf1_specs(graph: Any, collection: dict[str, str], given: str) -> tuple[TensorSpec, ...]:
    """The specs of the tensors a collection names; a one-line refusal when one is not in the graph."""
    specs = []
    for name, tensor_name in sorted(collection.items()):
        try:
            tensor = graph.get_tensor_by_name(tensor_name)
        except (KeyError, ValueError) as error:
            raise ModelError(f"--model={given}: a collection names a missing tensor: {first_line(error)}") from None
        shape = tensor.shape.as_list() if tensor.shape.rank is not None else [None]
        specs.append(TensorSpec(name, tensor.dtype.name, _dims(shape or [None])))
    return tuple(specs)


def _tf1_signature(location: ModelLocation) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    tf = import_tensorflow()
    from tensorflow.core.protobuf import meta_graph_pb2

    meta_graph = meta_graph_pb2.MetaGraphDef()
    graph = tf.Graph()
    try:
        meta_graph.ParseFromString(read_bytes(location.path + ".meta"))
        with graph.as_default():
            tf.compat.v1.train.import_meta_graph(meta_graph, clear_devices=True)
    except Exception as error:  # TensorFlow raises many types for a broken graph
        raise ModelError(f"--model={location.given}: {location.path}.meta does not load: {first_line(error)}") from None
    inputs = tf1_collection(graph, "inputs", location.given)
    outputs = tf1_collection(graph, "outputs", location.given)
    return tf1_specs(graph, inputs, location.given), tf1_specs(graph, outputs, location.given)


def keras_specs(model: Any) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Named specs of a Keras model's inputs and outputs (names of its input and output layers)."""
    input_names = [tensor.name for tensor in model.inputs]
    output_names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])

    def spec(name: str, tensor: Any) -> TensorSpec:
        return TensorSpec(name, str(tensor.dtype).removeprefix("<dtype: '").removesuffix("'>"), _dims(tensor.shape))

    return (
        tuple(spec(name, tensor) for name, tensor in zip(input_names, model.inputs, strict=True)),
        tuple(spec(name, tensor) for name, tensor in zip(output_names, model.outputs, strict=True)),
    )


def _keras_signature(location: ModelLocation) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    import_tensorflow()
    import keras

    try:
        with (
            FileSystems.open(location.path, compression_type="uncompressed") as handle,
            zipfile.ZipFile(handle) as archive,
        ):
            config = json.loads(archive.read("config.json"))
    except Exception as error:  # not a zip, no config.json, not JSON
        raise ModelError(f"--model={location.given}: not a readable .keras file: {first_line(error)}") from None
    try:
        with variables_without_memory():
            model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    except Exception as error:  # Keras raises many types for a refused or broken config
        raise ModelError(
            f"--model={location.given}: the .keras file does not load safely: {first_line(error)}"
        ) from None
    return keras_specs(model)


_READERS = {
    ModelFormat.SAVED_MODEL: _saved_model_signature,
    ModelFormat.TF1_CHECKPOINT: _tf1_signature,
    ModelFormat.KERAS: _keras_signature,
}


def read_signature(location: ModelLocation) -> ModelSignature:
    """The model's signature from its description alone, never its weights."""
    inputs, outputs = _READERS[location.format](location)
    return ModelSignature(location.format, inputs, outputs, location.given)
