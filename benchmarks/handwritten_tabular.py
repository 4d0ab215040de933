"""Baseline for JSON Lines and CSV: the best a user could write with pandas in one process.

Reads the file with pandas' own reader (gzip by name), feeds each signature input the column of
its name, calls the model on batches, and writes one JSON line per record (key and outputs).
Prints one JSON object of measurements on stdout.

    python benchmarks/handwritten_tabular.py INPUT.{csv,jsonl}.gz SAVED_MODEL OUTPUT.jsonl
"""

from __future__ import annotations

import time

STARTED = time.time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import orjson  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256


def read(path: str) -> pd.DataFrame:
    if ".jsonl" in path:
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def main() -> int:
    input_path, model_path, output_path = sys.argv[1:4]
    load_started = time.time()
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    model_load_s = time.time() - load_started
    inputs = serve.structured_input_signature[1]
    frame = read(input_path)
    columns = {name: frame[name].to_numpy() for name in inputs}
    keys = frame["key"].tolist()
    first_prediction_s = None
    with open(output_path, "wb") as out:
        for start in range(0, len(keys), BATCH):
            feed = {
                name: tf.constant(
                    columns[name][start : start + BATCH].astype(
                        object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
                    ),
                    dtype=spec.dtype,
                )
                for name, spec in inputs.items()
            }
            outputs = {name: tensor.numpy() for name, tensor in serve(**feed).items()}
            rows = []
            for index, key in enumerate(keys[start : start + BATCH]):
                row = {"key": key}
                for name, values in outputs.items():
                    value = values[index]
                    row[name] = value.decode() if isinstance(value, bytes) else value
                rows.append(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
            out.write(b"\n".join(rows) + b"\n")
            if first_prediction_s is None:
                out.flush()
                first_prediction_s = time.time() - STARTED
    print(json.dumps({"records": len(keys), "first_prediction_s": first_prediction_s, "model_load_s": model_load_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
