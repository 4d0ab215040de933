"""Baseline 3, the 2017 sample's way: one TF1 `session.run` per record.

Uses the seed's own metagraph with the sample weights (scripts/legacy_checkpoint.py), parses
each line in Python and feeds one image at a time, as the seed's DoFn did. Prints one JSON
object of measurements on stdout.

    python benchmarks/seed_style.py INPUT.txt.gz CHECKPOINT_PREFIX OUTPUT.jsonl [MAX_RECORDS]
"""

from __future__ import annotations

import time

STARTED = time.time()

import gzip  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402


def main() -> int:
    input_path, prefix, output_path = sys.argv[1:4]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    load_started = time.time()
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
        inputs = json.loads(graph.get_collection("inputs")[0])
        outputs = json.loads(graph.get_collection("outputs")[0])
        session = tf.compat.v1.Session(graph=graph)
        saver.restore(session, prefix)
    fetches = [graph.get_tensor_by_name(outputs["key"]), graph.get_tensor_by_name(outputs["scores"])]
    image_input, key_input = graph.get_tensor_by_name(inputs["image"]), graph.get_tensor_by_name(inputs["key"])
    model_load_s = time.time() - load_started
    first_prediction_s = None
    count = 0
    started = time.time()
    with gzip.open(input_path, "rt") as lines, open(output_path, "w") as out:
        for line in lines:
            key, image = line.split(":")
            keys, scores = session.run(
                fetches, feed_dict={key_input: [int(key)], image_input: [[float(v) for v in image.split(",")]]}
            )
            out.write(
                json.dumps({"key": int(keys[0]), **{f"pred{i}": float(s) for i, s in enumerate(scores[0])}}) + "\n"
            )
            if first_prediction_s is None:
                out.flush()
                first_prediction_s = time.time() - STARTED
            count += 1
            if limit and count >= limit:
                break
    steady = time.time() - started
    print(
        json.dumps(
            {
                "records": count,
                "steady_images_per_s": count / steady,
                "first_prediction_s": first_prediction_s,
                "model_load_s": model_load_s,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
