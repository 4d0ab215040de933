"""Trains the sample model: the 2017 sample's CNN on keys 0..7999 of the sample images.

Deterministic (fixed seeds, TensorFlow op determinism), evaluated on the held-out keys
8000..9999, exported as a TF2 SavedModel taking 28x28x1 images. Run with `make sample-model`.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "template"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline.data.seed_lines import parse_lines  # noqa: E402
from pipeline.evaluate import read_labels  # noqa: E402

TRAIN_KEYS = range(0, 8000)
HELD_OUT_KEYS = range(8000, 10000)
MIN_ACCURACY = 0.97
SEED = 2017


def load_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(path, "rb") as handle:
        parsed = parse_lines(handle.read().splitlines(), 784)
    if parsed.rejections or not len(parsed.keys):
        raise SystemExit(f"{path}: {len(parsed.rejections)} unreadable lines")
    return parsed.keys, parsed.images


def seed_cnn() -> keras.Model:
    """conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dense 10 softmax; SAME padding as the seed."""
    image = keras.Input(shape=(28, 28, 1), name="image")
    x = keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="conv1")(image)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(1024, activation="relu", name="dense")(x)
    x = keras.layers.Dropout(0.4)(x)
    scores = keras.layers.Dense(10, activation="softmax", name="scores")(x)
    return keras.Model(image, scores, name="mnist_seed_cnn")


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random shifts of up to two pixels: 8,000 images are few for this network."""
    shifted = np.empty_like(images)
    for index, (dy, dx) in enumerate(rng.integers(-2, 3, size=(len(images), 2))):
        shifted[index] = np.roll(images[index], (dy, dx), axis=(0, 1))
    return shifted


def export_saved_model(model: keras.Model, path: Path) -> None:
    """A SavedModel with one `serving_default` signature: image (n, 28, 28, 1) -> scores (n, 10).

    Keras' own `model.export` tracks every variable twice (26 MB instead of 13 MB here).
    """
    module = tf.Module()
    module.weights = [variable.value for variable in model.weights]

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")])
    def serve(image):
        return {"scores": model(image, training=False)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT / "samples/mnist/images.txt.gz")
    parser.add_argument("--labels", type=Path, default=ROOT / "samples/mnist/t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--export", type=Path, default=ROOT / "samples/model")
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    keys, images = load_images(args.images)
    labels_by_key = read_labels(str(args.labels))
    labels = np.array([labels_by_key[int(key)] for key in keys], dtype=np.int64)
    images = images.reshape(-1, 28, 28, 1)
    train = np.isin(keys, TRAIN_KEYS)
    held_out = np.isin(keys, HELD_OUT_KEYS)

    model = seed_cnn()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(SEED)
    for epoch in range(args.epochs):
        if epoch == args.epochs - 3:
            model.optimizer.learning_rate.assign(2e-4)
        history = model.fit(
            augment(images[train], rng), labels[train], batch_size=64, epochs=1, shuffle=True, verbose=0
        )
        print(f"epoch {epoch + 1}/{args.epochs}: loss {history.history['loss'][0]:.4f}", flush=True)

    _, accuracy = model.evaluate(images[held_out], labels[held_out], verbose=0)
    print(f"held-out accuracy on keys 8000..9999: {accuracy:.2%}")
    if accuracy < MIN_ACCURACY:
        print(f"below the required {MIN_ACCURACY:.0%}; not exporting", file=sys.stderr)
        return 1
    export_saved_model(model, args.export)
    size = sum(path.stat().st_size for path in args.export.rglob("*") if path.is_file())
    print(f"exported {args.export} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
