"""Baseline 2: the best a user could write in one process without Beam.

Reads the gzip file in chunks of lines, parses each chunk with pandas' C CSV reader, calls
the model on batches of the best size, and writes JSON lines. Prints one JSON object of
measurements on stdout.

    python benchmarks/handwritten.py INPUT.txt.gz SAVED_MODEL OUTPUT.jsonl
"""

from __future__ import annotations

import time

STARTED = time.time()

import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 256
CHUNK_LINES = 2048


def chunks(path: str):
    with gzip.open(path, "rt") as handle:
        lines = []
        for line in handle:
            lines.append(line)
            if len(lines) == CHUNK_LINES:
                yield lines
                lines = []
        if lines:
            yield lines


def main() -> int:
    input_path, model_path, output_path = sys.argv[1:4]
    load_started = time.time()
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    model_load_s = time.time() - load_started
    first_prediction_s = None
    count = 0
    with open(output_path, "w") as out:
        for lines in chunks(input_path):
            frame = pd.read_csv(io.StringIO("".join(lines).replace(":", ",")), header=None, dtype=np.float32)
            keys = frame.iloc[:, 0].to_numpy().astype(np.int64)
            images = frame.iloc[:, 1:].to_numpy(dtype=np.float32).reshape(-1, 28, 28, 1)
            for start in range(0, len(keys), BATCH):
                scores = serve(image=tf.constant(images[start : start + BATCH]))["scores"].numpy()
                for key, row in zip(keys[start : start + BATCH].tolist(), scores.tolist(), strict=True):
                    record = {"key": key, "prediction": int(np.argmax(row)), "confidence": max(row)}
                    record.update({f"pred{index}": value for index, value in enumerate(row)})
                    out.write(json.dumps(record) + "\n")
                if first_prediction_s is None:
                    out.flush()
                    first_prediction_s = time.time() - STARTED
                count += len(scores)
    print(json.dumps({"records": count, "first_prediction_s": first_prediction_s, "model_load_s": model_load_s}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
