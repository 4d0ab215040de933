"""Baseline for Parquet: the best a user could write with pyarrow in one process.

Reads the file a batch at a time with pyarrow (only the columns the model takes, and `key`), feeds
each signature input the column of its name (list columns flattened and shaped as the input takes
them), calls the model, and writes one JSON line per record (key and outputs). Prints one JSON
object of measurements on stdout.

    python benchmarks/handwritten_parquet.py INPUT.parquet SAVED_MODEL OUTPUT.jsonl
"""

from __future__ import annotations

import time

STARTED = time.time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256


def column(array: pa.Array, spec: tf.TensorSpec) -> np.ndarray:
    """A column as the input takes it: nested lists flattened to their values, then shaped."""
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    values = array.to_numpy(zero_copy_only=False)
    dtype = object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
    return values.reshape(-1, *spec.shape[1:]).astype(dtype, copy=False)


def main() -> int:
    input_path, model_path, output_path = sys.argv[1:4]
    load_started = time.time()
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    model_load_s = time.time() - load_started
    inputs = serve.structured_input_signature[1]
    first_prediction_s = None
    records = 0
    with open(output_path, "wb") as out:
        for batch in pq.ParquetFile(input_path).iter_batches(batch_size=BATCH, columns=["key", *inputs]):
            feed = {
                name: tf.constant(column(batch.column(name), spec), dtype=spec.dtype) for name, spec in inputs.items()
            }
            outputs = {name: tensor.numpy() for name, tensor in serve(**feed).items()}
            rows = []
            for index, key in enumerate(batch.column("key").to_pylist()):
                row = {"key": key}
                for name, values in outputs.items():
                    value = values[index]
                    row[name] = value.decode() if isinstance(value, bytes) else value
                rows.append(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY))
            out.write(b"\n".join(rows) + b"\n")
            records += batch.num_rows
            if first_prediction_s is None:
                out.flush()
                first_prediction_s = time.time() - STARTED
    print(json.dumps({"records": records, "first_prediction_s": first_prediction_s, "model_load_s": model_load_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
