"""The benchmark's model files, all with the sample model's weights: the seed's TF1 checkpoint
(for the seed-style baseline), a .keras file (for Beam's stock TF handler), and a SavedModel
that checks its input the way production models do, failing a batch that holds a pixel outside
[0, 1] (for the failure-isolation scenarios).

    python benchmarks/make_models.py LEGACY_PREFIX MODEL.keras CHECKED_SAVED_MODEL
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tensorflow as tf  # noqa: E402

from scripts.legacy_checkpoint import SAMPLE_MODEL, write_legacy_checkpoint  # noqa: E402
from scripts.train_sample_model import seed_cnn  # noqa: E402


def write_keras_file(path: Path) -> Path:
    model = seed_cnn()
    weights = {
        variable.name.removesuffix(":0"): variable for variable in tf.saved_model.load(str(SAMPLE_MODEL)).weights
    }
    for variable in model.weights:
        variable.assign(weights[variable.path])
    model.save(path)
    return path


def write_range_checked_model(path: Path) -> Path:
    """The sample model behind `tf.debugging` assertions that every pixel is in [0, 1]."""
    module = tf.Module()
    module.sample_model = tf.saved_model.load(str(SAMPLE_MODEL))
    classify = module.sample_model.signatures["serving_default"]

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")])
    def serve(image):
        checks = [
            tf.debugging.assert_greater_equal(image, 0.0, message="pixel below 0"),
            tf.debugging.assert_less_equal(image, 1.0, message="pixel above 1"),
        ]
        with tf.control_dependencies(checks):
            return {"scores": classify(image=tf.identity(image))["scores"]}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def main() -> int:
    legacy, keras_file, checked = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    write_legacy_checkpoint(legacy)
    write_keras_file(keras_file)
    write_range_checked_model(checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
