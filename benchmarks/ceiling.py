"""Baseline 1, the ceiling: records already parsed into one array, the model called directly.

Tries batch sizes 32..1024 on a slice (they differ little on CPU), then times the whole array at
the template's default batch size, 256, with the CPU time it takes: the model's own cost per
image. Prints one JSON object of measurements on stdout.

    python benchmarks/ceiling.py INPUT.txt.gz SAVED_MODEL
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "template"))

import tensorflow as tf

from pipeline.data.seed_lines import parse_lines

BATCH_SIZES = (32, 64, 128, 256, 512, 1024)
DEFAULT_BATCH = 256


def rate(serve, images, batch_size: int) -> tuple[float, float]:
    """Images per second, and CPU microseconds per image (all of TensorFlow's threads)."""
    serve(image=tf.constant(images[:batch_size]))  # warm up this shape
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(images), batch_size):
        serve(image=tf.constant(images[start : start + batch_size]))
    return len(images) / (time.perf_counter() - started), (time.process_time() - cpu_started) / len(images) * 1e6


def main() -> int:
    input_path, model_path = sys.argv[1:3]
    with gzip.open(input_path, "rb") as handle:
        images = parse_lines(handle.read().splitlines(), 784).images.reshape(-1, 28, 28, 1)
    load_started = time.time()
    serve = tf.saved_model.load(model_path).signatures["serving_default"]
    model_load_s = time.time() - load_started
    probe = images[:4096]
    by_size = {size: rate(serve, probe, size)[0] for size in BATCH_SIZES}
    best = max(by_size, key=by_size.get)
    images_per_s, cpu_us = rate(serve, images, DEFAULT_BATCH)  # the template's default batch size
    print(
        json.dumps(
            {
                "records": len(images),
                "images_per_s": images_per_s,
                "model_cpu_us_per_image": cpu_us,
                "best_batch_size": best,
                "probe_images_per_s": {str(size): round(value) for size, value in by_size.items()},
                "model_load_s": model_load_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
