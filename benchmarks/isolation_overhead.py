"""What failure isolation costs when nothing fails: the model called directly against the same calls
through `Scorer`, on the same batches of 256, in alternating rounds (a shared machine drifts).

Prints one JSON object on stdout: both rates and their ratio.

    python benchmarks/isolation_overhead.py INPUT.txt.gz SAVED_MODEL
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "template"))

import numpy as np

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.seed_lines import parse_lines
from pipeline.job.isolation import Scorer
from pipeline.model.health import ModelHealth
from pipeline.model.loading import load_model, predict_checked

BATCH = 256
RECORDS = 20_480
ROUNDS = 5


def main() -> int:
    input_path, model_path = sys.argv[1:3]
    with gzip.open(input_path, "rb") as handle:
        lines = handle.read().splitlines()[:RECORDS]
    images = parse_lines(lines, 784).images.reshape(-1, 28, 28, 1)
    model = load_model(model_path)
    source = RecordBatch(input_path, 1, lines)
    batches = [
        InstanceBatch(
            np.arange(start, start + BATCH, dtype=np.int64),
            {"image": images[start : start + BATCH]},
            source,
            np.arange(start, start + BATCH),
        )
        for start in range(0, len(images) - BATCH + 1, BATCH)
    ]
    outputs = ("scores",)

    def predict(features):
        return predict_checked(model, features, outputs), None

    scorer = Scorer(predict, model_path, ModelHealth())

    def direct() -> None:
        for batch in batches:
            predict_checked(model, batch.features, outputs)

    def isolated() -> None:
        for batch in batches:
            scorer.score(batch)

    direct()  # warm up
    times: dict[str, list[float]] = {"direct": [], "isolated": []}
    for _ in range(ROUNDS):
        for name, run in (("direct", direct), ("isolated", isolated)):
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    records = len(batches) * BATCH
    direct_rate = records / statistics.median(times["direct"])
    isolated_rate = records / statistics.median(times["isolated"])
    print(
        json.dumps(
            {
                "records": records,
                "images_per_s": isolated_rate,
                "direct_images_per_s": direct_rate,
                "isolated_over_direct": isolated_rate / direct_rate,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
