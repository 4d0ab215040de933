"""Makes a large real model for the model-memory benchmark: a wide MLP over the sample images, trained briefly.

An MLP over the sample model's input (image, (n, 28, 28, 1)) with wide dense layers, 784 -> 4096 -> 8192
-> 4096 -> 10 by default: about 70 million weights, 280 MB of float32 variables on disk, so that loading
it shows up against a Python process's own memory, while it still scores a few hundred images a second
on two CPU cores. Trained for one epoch on keys 0..7999 of the sample images (it predicts digits, not
noise: its held-out accuracy is printed and checked) and exported as a SavedModel with the sample model's
signature (image -> scores), under build/ by default (never committed).

    python scripts/make_large_model.py [--export build/large_model] [--hidden 4096,8192,4096]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "template"))

from pipeline.model.runtime import import_tensorflow  # noqa: E402

import_tensorflow()  # without TensorFlow's start-up lines about absent CUDA drivers

import keras  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.evaluate import read_labels  # noqa: E402
from scripts.train_sample_model import HELD_OUT_KEYS, SEED, TRAIN_KEYS, export_saved_model, load_images  # noqa: E402

DEFAULT_EXPORT = ROOT / "build" / "large_model"
MIN_ACCURACY = 0.85  # one epoch of a wide MLP: well above chance, below the sample CNN


def wide_mlp(hidden: list[int]) -> keras.Model:
    image = keras.Input(shape=(28, 28, 1), name="image")
    x = keras.layers.Flatten()(image)
    for index, width in enumerate(hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"dense{index}")(x)
    scores = keras.layers.Dense(10, activation="softmax", name="scores")(x)
    return keras.Model(image, scores, name="wide_mlp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=ROOT / "samples/mnist/images.txt.gz")
    parser.add_argument("--labels", type=Path, default=ROOT / "samples/mnist/t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--hidden", default="4096,8192,4096", help="widths of the hidden layers, comma-separated")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()

    keras.utils.set_random_seed(SEED)
    keys, images = load_images(args.images)
    labels_by_key = read_labels(str(args.labels))
    labels = np.array([labels_by_key[int(key)] for key in keys], dtype=np.int64)
    images = images.reshape(-1, 28, 28, 1)
    train, held_out = np.isin(keys, TRAIN_KEYS), np.isin(keys, HELD_OUT_KEYS)

    model = wide_mlp([int(width) for width in args.hidden.split(",")])
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[train], labels[train], batch_size=128, epochs=args.epochs, shuffle=True, verbose=0)
    _, accuracy = model.evaluate(images[held_out], labels[held_out], batch_size=500, verbose=0)
    print(f"{model.count_params():,} weights; held-out accuracy on keys 8000..9999: {accuracy:.2%}")
    if accuracy < MIN_ACCURACY:
        print(f"below the required {MIN_ACCURACY:.0%}; not exporting", file=sys.stderr)
        return 1
    export_saved_model(model, args.export)
    size = sum(path.stat().st_size for path in args.export.rglob("*") if path.is_file())
    print(f"exported {args.export} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
