"""Builders of tiny real TensorFlow models in every format the template loads.

The same small network (width inputs -> 3 softmax classes) is saved as a SavedModel with a
flat input, a SavedModel with an image-shaped input, a .keras file, and a TF1 checkpoint of
the 2017 sample's convention; `reference_scores` computes what each must predict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WIDTH = 12
IMAGE_SHAPE = (2, 2, 3)
CLASSES = 3
_RNG = np.random.default_rng(7)
KERNEL = _RNG.normal(size=(WIDTH, CLASSES)).astype(np.float32)
BIAS = _RNG.normal(size=(CLASSES,)).astype(np.float32)


def reference_scores(images: np.ndarray) -> np.ndarray:
    """softmax(images @ KERNEL + BIAS) in float64: what every tiny model computes."""
    logits = images.reshape(len(images), -1).astype(np.float64) @ KERNEL + BIAS
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _keras_model(input_shape: tuple[int, ...]):
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    flat = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    scores = keras.layers.Dense(CLASSES, activation="softmax", name="scores")(flat)
    model = keras.Model(inputs, scores)
    model.get_layer("scores").set_weights([KERNEL, BIAS])
    return model


def save_saved_model(model, path: Path, input_shape: tuple[int, ...]) -> Path:
    """A SavedModel with a `serving_default` signature, variables stored once."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = [variable.value for variable in model.weights]

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32, name="image")])
    def serve(image):
        return {"scores": model(image, training=False)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def save_tf1_checkpoint(prefix: Path, with_key: bool = True) -> Path:
    """A TF1 graph + checkpoint following the seed: collections inputs {image, key}, outputs {key, scores}."""
    import tensorflow as tf

    prefix.parent.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, WIDTH])
        key = tf.compat.v1.placeholder(tf.int64, [None])
        kernel = tf.compat.v1.Variable(KERNEL)
        bias = tf.compat.v1.Variable(BIAS)
        scores = tf.nn.softmax(tf.matmul(image, kernel) + bias)
        inputs = {"image": image.name}
        outputs = {"scores": scores.name}
        if with_key:
            inputs["key"] = key.name
            outputs["key"] = tf.identity(key).name
        tf.compat.v1.add_to_collection("inputs", json.dumps(inputs))
        tf.compat.v1.add_to_collection("outputs", json.dumps(outputs))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(prefix))
    return prefix


def build_tiny_models(directory: Path) -> dict[str, Path]:
    flat = _keras_model((WIDTH,))
    shaped = _keras_model(IMAGE_SHAPE)
    keras_path = directory / "tiny.keras"
    shaped.save(keras_path)
    return {
        "saved_model_flat": save_saved_model(flat, directory / "saved-flat", (WIDTH,)),
        "saved_model_shaped": save_saved_model(shaped, directory / "saved-shaped", IMAGE_SHAPE),
        "keras": keras_path,
        "tf1": save_tf1_checkpoint(directory / "tf1" / "export"),
    }


def lambda_keras_file(path: Path) -> Path:
    """A .keras file with a Lambda layer: arbitrary code that safe_mode must refuse."""
    import keras

    inputs = keras.Input(shape=(WIDTH,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(path)
    return path


def _linear_saved_model(path: Path, scores_of, extra_inputs: tuple = ()) -> Path:
    """A SavedModel serving `scores_of(image, logits, *extra)`, logits being image @ KERNEL + BIAS."""
    import tensorflow as tf

    module = tf.Module()
    module.kernel = tf.Variable(KERNEL)
    module.bias = tf.Variable(BIAS)
    spec = [tf.TensorSpec([None, WIDTH], tf.float32, name="image"), *extra_inputs]

    @tf.function(input_signature=spec)
    def serve(image, *extra):
        return {"scores": scores_of(image, tf.matmul(image, module.kernel) + module.bias, *extra)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def failing_saved_model(path: Path, limit: float = 100.0) -> Path:
    """A SavedModel that raises (InvalidArgumentError) on any batch holding a value >= limit."""
    import tensorflow as tf

    def scores_of(image, logits):
        checked = tf.debugging.assert_less(image, limit, message="value out of range")
        with tf.control_dependencies([checked]):
            return tf.nn.softmax(logits)

    return _linear_saved_model(path, scores_of)


def nan_scoring_saved_model(path: Path) -> Path:
    """A SavedModel that returns NaN scores for every record whose first value is negative."""
    import tensorflow as tf

    def scores_of(image, logits):
        first = image[:, :1]
        poison = tf.where(first < 0, tf.math.sqrt(first), tf.zeros_like(first))  # sqrt of a negative is NaN
        return tf.nn.softmax(logits) + poison

    return _linear_saved_model(path, scores_of)


def two_input_saved_model(path: Path) -> Path:
    """A SavedModel whose signature also requires a `scale` input, which the template does not feed."""
    import tensorflow as tf

    scale = tf.TensorSpec([None, 1], tf.float32, name="scale")
    return _linear_saved_model(path, lambda image, logits, factor: tf.nn.softmax(logits * factor), (scale,))


def keras_mnist_like(path: Path) -> Path:
    """A small .keras classifier of MNIST's shapes: (28, 28, 1) in, 10 softmax scores out."""
    import keras

    inputs = keras.Input(shape=(28, 28, 1), name="image")
    scores = keras.layers.Dense(10, activation="softmax", name="scores")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, scores).save(path)
    return path


def multi_input_saved_model(path: Path) -> Path:
    """A SavedModel fed by name with inputs of several dtypes and a None dimension, and several outputs:

    inputs  features float32 (None, 3), count int64 (None,), tag string (None,), sequence float32 (None, None)
    outputs score float32 (None,)       = sum(features) * count + sum(sequence)   (a regression output)
            label string (None,)        = tag, upper-cased
            stats float32 (None, 2)     = [len(sequence), max(features)]
    `multi_input_reference` computes the same in NumPy.
    """
    import tensorflow as tf

    module = tf.Module()
    spec = [
        tf.TensorSpec([None, 3], tf.float32, name="features"),
        tf.TensorSpec([None], tf.int64, name="count"),
        tf.TensorSpec([None], tf.string, name="tag"),
        tf.TensorSpec([None, None], tf.float32, name="sequence"),
    ]

    @tf.function(input_signature=spec)
    def serve(features, count, tag, sequence):
        total = tf.reduce_sum(features, axis=1) * tf.cast(count, tf.float32) + tf.reduce_sum(sequence, axis=1)
        length = tf.cast(tf.fill([tf.shape(sequence)[0]], tf.shape(sequence)[1]), tf.float32)
        return {
            "score": total,
            "label": tf.strings.upper(tag),
            "stats": tf.stack([length, tf.reduce_max(features, axis=1)], axis=1),
        }

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def multi_input_reference(features, count, tag, sequence) -> dict:
    features = np.asarray(features, dtype=np.float32)
    sequence = np.asarray(sequence, dtype=np.float32)
    return {
        "score": float(np.float32(features.sum() * np.float32(count) + sequence.sum())),
        "label": tag.upper(),
        "stats": [float(len(sequence)), float(features.max())],
    }


def example_parsing_saved_model(path: Path) -> Path:
    """A SavedModel of the TFX / Estimator export convention: one tf.string input of serialized
    tf.train.Examples (feature `x`: 2 floats), parsed in the graph; output `total` float32 (None,) = sum(x)."""
    import tensorflow as tf

    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([2], tf.float32)})
        return {"total": tf.reduce_sum(parsed["x"], axis=1)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def serialized_example(x: list[float], **features: int | bytes) -> bytes:
    """A tf.train.Example with float feature `x` and int64 / bytes features by name."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    example.features.feature["x"].float_list.value.extend(x)
    for name, value in features.items():
        if isinstance(value, bytes):
            example.features.feature[name].bytes_list.value.append(value)
        else:
            example.features.feature[name].int64_list.value.append(value)
    return example.SerializeToString()


def out_of_memory_saved_model(path: Path, fits: int = 8) -> Path:
    """A SavedModel that really runs out of memory (ResourceExhaustedError) on batches of more than
    `fits` records: it asks TensorFlow for a scratch tensor of 2**40 floats per record."""
    import tensorflow as tf

    def scores_of(image, logits):
        count = tf.shape(image, out_type=tf.int64)[0]
        size = tf.where(count > fits, count * (2**40), tf.constant(1, tf.int64))
        scratch = tf.zeros(tf.reshape(size, [1]), tf.float32)
        return tf.nn.softmax(logits) + 0.0 * scratch[0]

    return _linear_saved_model(path, scores_of)


def age_checking_saved_model(path: Path) -> Path:
    """A SavedModel fed by name (age, weight: float32 (None,)) whose graph asserts age >= 0, the way
    models check their inputs; output `score` = 0.5 * age + weight."""
    import tensorflow as tf

    module = tf.Module()
    spec = [tf.TensorSpec([None], tf.float32, name="age"), tf.TensorSpec([None], tf.float32, name="weight")]

    @tf.function(input_signature=spec)
    def serve(age, weight):
        checked = tf.debugging.assert_greater_equal(age, 0.0, message="age must not be negative")
        with tf.control_dependencies([checked]):
            return {"score": 0.5 * age + weight}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def sharpened_saved_model(path: Path, factor: float) -> Path:
    """The flat tiny model with its logits times `factor`: the same signature, other scores (a new version)."""
    import tensorflow as tf

    return _linear_saved_model(path, lambda image, logits: tf.nn.softmax(logits * factor))


def sharpened_scores(images: np.ndarray, factor: float) -> np.ndarray:
    logits = (images.reshape(len(images), -1).astype(np.float64) @ KERNEL + BIAS) * factor
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def multi_signature_saved_model(path: Path) -> Path:
    """The flat tiny model with two signatures, as exported models often have: `serving_default`
    (image -> scores) and `predict` (image -> logits), both fed `image` (None, WIDTH)."""
    import tensorflow as tf

    module = tf.Module()
    module.kernel = tf.Variable(KERNEL)
    module.bias = tf.Variable(BIAS)
    spec = [tf.TensorSpec([None, WIDTH], tf.float32, name="image")]

    @tf.function(input_signature=spec)
    def serve(image):
        return {"scores": tf.nn.softmax(tf.matmul(image, module.kernel) + module.bias)}

    @tf.function(input_signature=spec)
    def predict(image):
        return {"logits": tf.matmul(image, module.kernel) + module.bias}

    module.serve, module.predict = serve, predict
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve, "predict": predict})
    return path


def reference_logits(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64) @ KERNEL + BIAS


def data_loss_saved_model(path: Path) -> Path:
    """A SavedModel whose own data is damaged: it inflates a corrupt constant on every call, so TensorFlow
    raises DataLossError whatever the records are. What a model with damaged files does mid-job."""
    import tensorflow as tf

    damaged = b"x\x9c this was a table of weights, now corrupt"

    def scores_of(image, logits):
        table = tf.io.decode_compressed(tf.constant(damaged), compression_type="ZLIB")
        return tf.nn.softmax(logits) + 0.0 * tf.cast(tf.strings.length(table), tf.float32)

    return _linear_saved_model(path, scores_of)
