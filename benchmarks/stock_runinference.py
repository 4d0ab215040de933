"""Baseline 4: Beam's stock RunInference with its own TensorFlow handler and default batching.

Keyed TFModelHandlerNumpy over a .keras copy of the sample model (Beam's handler cannot
load a SavedModel directory under Keras 3), ReadFromText, per-line parsing in a Map, and
WriteToText of the PredictionResults, on DirectRunner.

    python benchmarks/stock_runinference.py INPUT.txt.gz MODEL.keras OUTPUT_PREFIX
"""

from __future__ import annotations

import time

STARTED = time.time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# tensorflow_hub (imported by Beam's TF handler) still reads pkg_resources.parse_version,
# which setuptools >= 81 (pinned by TensorFlow's dependencies here) no longer ships.
from packaging.version import parse as parse_version  # noqa: E402

sys.modules.setdefault("pkg_resources", types.SimpleNamespace(parse_version=parse_version))

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
from apache_beam.metrics.metric import Metrics, MetricsFilter  # noqa: E402
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference  # noqa: E402
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerNumpy  # noqa: E402


def parse(line: str):
    key, image = line.split(":")
    return int(key), np.array(image.split(","), dtype=np.float32).reshape(28, 28, 1)


def format_prediction(key, result) -> str:
    FIRST_PREDICTION.update(int(time.time() * 1000))
    return json.dumps({"key": key, "scores": result.inference.numpy().tolist()})


FIRST_PREDICTION = Metrics.distribution("bench", "first_prediction_unix_ms")


def main() -> int:
    input_path, model_path, output_prefix = sys.argv[1:4]
    handler = KeyedModelHandler(TFModelHandlerNumpy(model_path))
    pipeline = beam.Pipeline()
    _ = (
        pipeline
        | beam.io.ReadFromText(input_path)
        | beam.Map(parse)
        | RunInference(handler)
        | beam.MapTuple(format_prediction)
        | beam.io.WriteToText(output_prefix)
    )
    result = pipeline.run()
    result.wait_until_finish()
    first = result.metrics().query(MetricsFilter().with_name("first_prediction_unix_ms"))["distributions"][0].committed
    print(json.dumps({"records": None, "first_prediction_s": first.min / 1000 - STARTED}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
