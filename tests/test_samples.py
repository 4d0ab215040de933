"""The penguins and PNG samples: committed files load and behave as documented, and their scripts rebuild them.

The data files must come back byte for byte from scripts/train_penguins_model.py and
scripts/make_png_sample.py; the models need not (SavedModels hold ids), but the rebuilt ones
must predict what the committed ones do on the held-out data.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL, SAMPLES

PENGUINS = SAMPLES / "penguins"
PNG = SAMPLES / "png"
PNG_KEYS = range(8000, 8200)
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
STRING_COLUMNS = ("island", "sex")
NUMERIC_COLUMNS = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CSV_HEADER = ["key", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "species"]


def signature(path: Path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def penguin_rows(path: Path = PENGUINS / "penguins.csv") -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == CSV_HEADER
        return [
            {
                name: int(row[name]) if name == "key" else float(row[name]) if name in NUMERIC_COLUMNS else row[name]
                for name in CSV_HEADER
            }
            for row in reader
        ]


def held_out(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["key"] % 5 == 0]


def predict_penguins(model_path: Path, rows: list[dict]) -> dict[str, np.ndarray]:
    inputs = {name: tf.constant([row[name] for row in rows], tf.string) for name in STRING_COLUMNS}
    inputs.update({name: tf.constant([row[name] for row in rows], tf.float32) for name in NUMERIC_COLUMNS})
    return {name: value.numpy() for name, value in signature(model_path)(**inputs).items()}


def png_contents(digits: Path) -> tf.Tensor:
    return tf.constant([(digits / f"{key}.png").read_bytes() for key in PNG_KEYS])


def float_images(keys: range) -> np.ndarray:
    with gzip.open(SAMPLE_IMAGES, "rt", encoding="ascii") as handle:
        lines = {int(line.partition(":")[0]): line.partition(":")[2] for line in handle}
    return np.array([lines[key].split(",") for key in keys], dtype=np.float32).reshape(-1, 28, 28, 1)


def run_script(script: str, out: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_penguins_signature_takes_one_named_input_per_column_and_no_key():
    serve = signature(PENGUINS / "model")
    _, inputs = serve.structured_input_signature
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "island": (tf.string, [None]),
        "sex": (tf.string, [None]),
        "bill_length_mm": (tf.float32, [None]),
        "bill_depth_mm": (tf.float32, [None]),
        "flipper_length_mm": (tf.float32, [None]),
        "body_mass_g": (tf.float32, [None]),
    }
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in serve.structured_outputs.items()} == {
        "probabilities": (tf.float32, [None, 3]),
        "species": (tf.string, [None]),
    }


def test_penguins_model_predicts_the_held_out_rows():
    rows = held_out(penguin_rows())
    predicted = predict_penguins(PENGUINS / "model", rows)
    probabilities, species = predicted["probabilities"], predicted["species"]
    assert probabilities.shape == (len(rows), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert [name.decode() for name in species] == [SPECIES[index] for index in probabilities.argmax(axis=1)]
    accuracy = np.mean([name.decode() == row["species"] for name, row in zip(species, rows, strict=True)])
    assert accuracy >= 0.9, f"held-out accuracy {accuracy:.2%}"


def test_penguins_jsonl_and_csv_hold_the_same_rows():
    rows = penguin_rows()
    lines = (PENGUINS / "penguins.jsonl").read_text(encoding="utf-8").splitlines()
    objects = [json.loads(line) for line in lines]
    assert objects == rows  # 18.0 == 18, so also check the JSON types below
    assert all(list(item) == CSV_HEADER for item in objects)
    for item in objects:
        assert isinstance(item["key"], int)
        assert all(isinstance(item[name], int | float) and not isinstance(item[name], bool) for name in NUMERIC_COLUMNS)
        assert all(isinstance(item[name], str) for name in (*STRING_COLUMNS, "species"))
    keys = [row["key"] for row in rows]
    assert keys == sorted(set(keys)) and len(rows) == 333  # complete rows of the 344, in the package's order
    assert {row["species"] for row in rows} == set(SPECIES)


def test_png_signature_takes_png_bytes_and_returns_scores():
    serve = signature(PNG / "model")
    _, inputs = serve.structured_input_signature
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in inputs.items()} == {
        "image_bytes": (tf.string, [None])
    }
    assert {name: (spec.dtype, spec.shape.as_list()) for name, spec in serve.structured_outputs.items()} == {
        "scores": (tf.float32, [None, 10])
    }


def test_png_files_are_the_digits_of_keys_8000_to_8199_with_their_labels():
    assert sorted(path.name for path in (PNG / "digits").iterdir()) == [f"{key}.png" for key in PNG_KEYS]
    labels = [line.split(",") for line in (PNG / "labels.csv").read_text(encoding="ascii").splitlines()]
    assert [int(key) for key, _ in labels] == list(PNG_KEYS)
    assert {int(label) for _, label in labels} == set(range(10))
    expected = np.round(float_images(PNG_KEYS) * 255).astype(np.uint8)
    decoded = np.stack([tf.io.decode_png((PNG / "digits" / f"{key}.png").read_bytes()).numpy() for key in PNG_KEYS])
    np.testing.assert_array_equal(decoded, expected)


def test_png_model_scores_are_the_sample_models_and_agree_with_the_labels():
    scores = signature(PNG / "model")(image_bytes=png_contents(PNG / "digits"))["scores"].numpy()
    reference = signature(SAMPLE_MODEL)(image=tf.constant(float_images(PNG_KEYS)))["scores"].numpy()
    assert scores.shape == (200, 10)
    assert np.abs(scores - reference).max() < 1e-2  # pixels differ by at most half a 1/255 step
    assert np.mean(scores.argmax(axis=1) == reference.argmax(axis=1)) >= 0.99
    labels = [int(line.split(",")[1]) for line in (PNG / "labels.csv").read_text(encoding="ascii").splitlines()]
    assert np.mean(scores.argmax(axis=1) == np.array(labels)) >= 0.97


def test_png_model_refuses_an_image_of_another_size():
    wrong = tf.io.encode_png(tf.zeros([27, 28, 1], tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError):
        signature(PNG / "model")(image_bytes=tf.stack([wrong]))


def test_penguins_script_rebuilds_the_same_data_and_an_equivalent_model(tmp_path):
    stdout = run_script("train_penguins_model.py", tmp_path)
    assert "held-out accuracy" in stdout
    for name in ("penguins.csv", "penguins.jsonl"):
        assert (tmp_path / name).read_bytes() == (PENGUINS / name).read_bytes(), name
    rows = held_out(penguin_rows())
    rebuilt, committed = predict_penguins(tmp_path / "model", rows), predict_penguins(PENGUINS / "model", rows)
    np.testing.assert_allclose(rebuilt["probabilities"], committed["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(rebuilt["species"], committed["species"])


def test_png_script_rebuilds_the_same_files_and_an_equivalent_model(tmp_path):
    run_script("make_png_sample.py", tmp_path)
    assert sorted(path.name for path in (tmp_path / "digits").iterdir()) == [f"{key}.png" for key in PNG_KEYS]
    for key in PNG_KEYS:
        assert (tmp_path / "digits" / f"{key}.png").read_bytes() == (PNG / "digits" / f"{key}.png").read_bytes(), key
    assert (tmp_path / "labels.csv").read_bytes() == (PNG / "labels.csv").read_bytes()
    rebuilt = signature(tmp_path / "model")(image_bytes=png_contents(PNG / "digits"))["scores"].numpy()
    committed = signature(PNG / "model")(image_bytes=png_contents(PNG / "digits"))["scores"].numpy()
    np.testing.assert_allclose(rebuilt, committed, atol=1e-5)


LAKE_FILES = (
    "penguins.parquet",
    "penguins.avro",
    "parts/part-00000.snappy.parquet",
    "parts/part-00001.snappy.parquet",
    "parts/part-00002.snappy.parquet",
    "parts/_SUCCESS",
)


def test_lake_files_hold_the_csv_rows_typed_as_a_lakes_writer_types_them():
    import fastavro
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = penguin_rows()
    single = pq.ParquetFile(PENGUINS / "penguins.parquet")
    assert single.metadata.num_row_groups == 3 and single.metadata.row_group(0).column(0).compression == "SNAPPY"
    types = {field.name: field.type for field in single.schema_arrow}
    assert types == {"key": pa.int64(), **{name: pa.float64() for name in NUMERIC_COLUMNS}} | {
        name: pa.string() for name in (*STRING_COLUMNS, "species")
    }
    assert single.read().to_pylist() == [{name: row[name] for name in types} for row in rows]
    parts = sorted((PENGUINS / "parts").iterdir())
    assert [path.name for path in parts] == ["_SUCCESS", *(f"part-0000{index}.snappy.parquet" for index in range(3))]
    assert (PENGUINS / "parts" / "_SUCCESS").read_bytes() == b""
    assert pa.concat_tables(pq.read_table(path) for path in parts[1:]).to_pylist() == single.read().to_pylist()
    with (PENGUINS / "penguins.avro").open("rb") as handle:
        reader = fastavro.reader(handle)
        assert reader.codec == "deflate" and list(reader) == single.read().to_pylist()


def test_lake_script_rebuilds_the_same_bytes(tmp_path):
    run_script("make_lake_samples.py", tmp_path)
    for name in LAKE_FILES:
        assert (tmp_path / name).read_bytes() == (PENGUINS / name).read_bytes(), name
