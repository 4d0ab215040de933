"""Writes a TF1 checkpoint in the 2017 sample's exact form, with the sample model's weights.

The seed's weights file was never published, only its metagraph (samples/seed-model/
export.meta). This restores that very graph, assigns it the trained sample model's weights
(same architecture, same variable shapes) and saves `export.{meta,index,data-*}`: a legacy
checkpoint users of the 2017 sample would recognise, used by tests and benchmarks.

    python scripts/legacy_checkpoint.py build/legacy/export
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
SEED_META = ROOT / "samples/seed-model/export.meta"
SAMPLE_MODEL = ROOT / "samples/model"

# Seed variable -> sample SavedModel variable (same shapes).
SEED_TO_SAMPLE = {
    "cnn/convolution1/Variable": "conv1/kernel",
    "cnn/convolution1/Variable_1": "conv1/bias",
    "cnn/convolution2/Variable": "conv2/kernel",
    "cnn/convolution2/Variable_1": "conv2/bias",
    "cnn/fully-connected/Variable": "dense/kernel",
    "cnn/fully-connected/Variable_1": "dense/bias",
    "cnn/output/Variable": "scores/kernel",
    "cnn/output/Variable_1": "scores/bias",
}


def write_legacy_checkpoint(prefix: Path, saved_model: Path = SAMPLE_MODEL, seed_meta: Path = SEED_META) -> Path:
    """Saves the seed graph with the SavedModel's weights at `prefix` (…/export); returns prefix."""
    import tensorflow as tf

    sample = tf.saved_model.load(str(saved_model))
    weights = {variable.name.removesuffix(":0"): variable.numpy() for variable in sample.weights}
    prefix.parent.mkdir(parents=True, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(str(seed_meta), clear_devices=True)
        assignments = [
            variable.assign(weights[SEED_TO_SAMPLE[variable.op.name]]) for variable in tf.compat.v1.global_variables()
        ]
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(assignments)
            saver.save(session, str(prefix), write_meta_graph=False, write_state=False)
    shutil.copyfile(seed_meta, str(prefix) + ".meta")
    return prefix


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", type=Path, help="checkpoint prefix to write, e.g. build/legacy/export")
    args = parser.parse_args()
    print(write_legacy_checkpoint(args.prefix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
