"""Builds the penguins sample: the Palmer Penguins table as CSV and JSON lines, and a species classifier.

A tabular counterpart to the MNIST sample: records of named, mixed-type columns (strings and
numbers) and a model whose signature takes one named input per column. The data is the CSV
shipped inside the `palmerpenguins` package (0.1.6, data CC0), so it needs no download; rows
with a missing value are dropped and each row keeps its position in that CSV as `key`.

Deterministic (fixed seeds, TensorFlow op determinism): trained on the rows with key % 5 != 0,
evaluated on the held-out rows key % 5 == 0, exported as a TF2 SavedModel (55 KB) whose
`serving_default` takes island, sex (strings) and the four measurements (float32), each of
shape (None,), and returns `probabilities` (None, 3) and `species` (None,). Run with
`make sample-penguins`; `--out DIR` writes everything under DIR instead of samples/penguins.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import importlib.resources
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PACKAGE = "palmerpenguins"
PACKAGE_VERSION = "0.1.6"  # the version README and provenance name; another may hold other rows
STRING_COLUMNS = ("island", "sex")
FLOAT_COLUMNS = ("bill_length_mm", "bill_depth_mm")
INTEGER_COLUMNS = ("flipper_length_mm", "body_mass_g")  # whole numbers in the data, float32 to the model
NUMERIC_COLUMNS = FLOAT_COLUMNS + INTEGER_COLUMNS
COLUMNS = ("key", "island", *NUMERIC_COLUMNS, "sex", "species")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")  # class i of `probabilities` is SPECIES[i]
MISSING = "NA"
HELD_OUT_EVERY = 5  # key % 5 == 0 is held out
MIN_ACCURACY = 0.9
SEED = 2020
Row = dict[str, str | int | float]


def is_held_out(key: int) -> bool:
    return key % HELD_OUT_EVERY == 0


def read_penguins() -> tuple[list[Row], str]:
    """The package's penguins.csv, complete rows only, typed; and that file's sha256 for provenance.

    Read as text rather than through `load_penguins()`: pandas would turn the integer columns
    into floats (they hold NA) and the keys would depend on how it indexes.
    """
    version = importlib.metadata.version(PACKAGE)
    if version != PACKAGE_VERSION:
        raise SystemExit(f"{PACKAGE} {version} is installed; the sample is built from {PACKAGE_VERSION}")
    data = importlib.resources.files(PACKAGE).joinpath("data/penguins.csv").read_bytes()
    rows = []
    for key, record in enumerate(csv.DictReader(io.StringIO(data.decode("utf-8")))):
        values = {name: record[name] for name in COLUMNS if name != "key"}
        if MISSING in values.values() or "" in values.values():
            continue
        if values["species"] not in SPECIES:
            raise SystemExit(f"row {key}: unknown species {values['species']!r}")
        row: Row = {"key": key, "island": values["island"]}
        row.update({name: float(values[name]) for name in FLOAT_COLUMNS})
        row.update({name: int(values[name]) for name in INTEGER_COLUMNS})
        row.update({"sex": values["sex"], "species": values["species"]})
        rows.append(row)
    return rows, hashlib.sha256(data).hexdigest()


def write_csv(rows: list[Row], path: Path) -> None:
    """Header row, then one line per penguin; numbers as Python writes them (39.1, 18.0, 3750)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(rows: list[Row], path: Path) -> None:
    """One JSON object per line, the CSV's columns in its order, numbers as JSON numbers."""
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def columns_of(rows: list[Row]) -> dict[str, np.ndarray]:
    """The model's inputs as arrays of shape (n,): strings as bytes objects, numbers as float32."""
    arrays = {name: np.array([str(row[name]).encode() for row in rows], dtype=object) for name in STRING_COLUMNS}
    arrays.update({name: np.array([row[name] for row in rows], dtype=np.float32) for name in NUMERIC_COLUMNS})
    return arrays


def build_classifier(train: dict[str, np.ndarray]) -> keras.Model:
    """One-hot island and sex (StringLookup), standardised measurements (Normalization), dense 8, softmax 3.

    The vocabularies and the normalisation statistics come from the training rows only; an
    island or sex never seen there maps to StringLookup's out-of-vocabulary slot.
    """
    inputs, features = {}, []
    for name in STRING_COLUMNS:
        inputs[name] = keras.Input(shape=(1,), dtype="string", name=name)
        vocabulary = sorted({value.decode() for value in train[name]})
        lookup = keras.layers.StringLookup(vocabulary=vocabulary, output_mode="one_hot", name=f"{name}_lookup")
        features.append(lookup(inputs[name]))
    for name in NUMERIC_COLUMNS:
        inputs[name] = keras.Input(shape=(1,), dtype="float32", name=name)
        normalization = keras.layers.Normalization(name=f"{name}_normalization")
        normalization.adapt(train[name].reshape(-1, 1))
        features.append(normalization(inputs[name]))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(keras.layers.Concatenate()(features))
    probabilities = keras.layers.Dense(len(SPECIES), activation="softmax", name="probabilities")(hidden)
    return keras.Model(inputs, probabilities, name="penguin_species")


def as_model_inputs(columns: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    """Shape (n, 1) tensors, the Keras model's inputs (Keras takes no numpy arrays of strings)."""
    return {name: tf.constant(values.reshape(-1, 1)) for name, values in columns.items()}


def export_saved_model(model: keras.Model, path: Path) -> None:
    """A SavedModel whose `serving_default` takes one named (None,) input per column, key excluded.

    A tf.function with an explicit input_signature fixes the input names, dtypes and shapes.
    The module tracks what that function reads, the dense weights and the StringLookup tables
    (Normalization's statistics are constants once adapted): tracking the Keras model itself
    would also save its optimizer state and Keras' own functions, 158 KB instead of 55.
    """
    module = tf.Module()
    module.weights = [variable.value for variable in model.trainable_weights]
    module.tables = [model.get_layer(f"{name}_lookup").lookup_table for name in STRING_COLUMNS]
    specs = [tf.TensorSpec([None], tf.string, name=name) for name in STRING_COLUMNS]
    specs += [tf.TensorSpec([None], tf.float32, name=name) for name in NUMERIC_COLUMNS]

    @tf.function(input_signature=specs)
    def serve(island, sex, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g):
        columns = {
            "island": island,
            "sex": sex,
            "bill_length_mm": bill_length_mm,
            "bill_depth_mm": bill_depth_mm,
            "flipper_length_mm": flipper_length_mm,
            "body_mass_g": body_mass_g,
        }
        probabilities = model({name: tf.expand_dims(value, -1) for name, value in columns.items()}, training=False)
        species = tf.gather(tf.constant(SPECIES), tf.argmax(probabilities, axis=1))
        return {"probabilities": probabilities, "species": species}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "samples/penguins", help="folder for data and model")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()

    tf.config.set_visible_devices([], "GPU")  # a GPU gains nothing on 265 rows and would train other weights
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    rows, digest = read_penguins()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "penguins.csv")
    write_jsonl(rows, args.out / "penguins.jsonl")
    print(f"{PACKAGE} {PACKAGE_VERSION} data/penguins.csv sha256 {digest}: {len(rows)} complete rows")

    train_rows = [row for row in rows if not is_held_out(int(row["key"]))]
    held_out_rows = [row for row in rows if is_held_out(int(row["key"]))]
    train, held_out = columns_of(train_rows), columns_of(held_out_rows)
    train_labels = np.array([SPECIES.index(str(row["species"])) for row in train_rows])
    held_out_labels = np.array([SPECIES.index(str(row["species"])) for row in held_out_rows])

    model = build_classifier(train)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = (
        tf.data.Dataset.from_tensor_slices((as_model_inputs(train), train_labels))
        .shuffle(len(train_rows), seed=SEED, reshuffle_each_iteration=True)
        .batch(32)
    )
    history = model.fit(batches, epochs=args.epochs, shuffle=False, verbose=0)  # shuffled above
    print(f"{len(train_rows)} training rows, {args.epochs} epochs: loss {history.history['loss'][-1]:.4f}")
    _, accuracy = model.evaluate(as_model_inputs(held_out), held_out_labels, verbose=0)
    print(f"held-out accuracy on {len(held_out_rows)} rows (key % {HELD_OUT_EVERY} == 0): {accuracy:.2%}")
    if accuracy < MIN_ACCURACY:
        print(f"below the required {MIN_ACCURACY:.0%}; not exporting", file=sys.stderr)
        return 1
    export_saved_model(model, args.out / "model")
    size = sum(path.stat().st_size for path in (args.out / "model").rglob("*") if path.is_file())
    print(f"exported {args.out / 'model'} ({size / 1e3:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
