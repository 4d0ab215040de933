"""The benchmark's model files, all with the sample model's weights: the seed's TF1 checkpoint
(for the seed-style baseline) and a .keras file (for Beam's stock TF handler).

    python benchmarks/make_models.py LEGACY_PREFIX MODEL.keras
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


def main() -> int:
    legacy, keras_file = Path(sys.argv[1]), Path(sys.argv[2])
    write_legacy_checkpoint(legacy)
    write_keras_file(keras_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
