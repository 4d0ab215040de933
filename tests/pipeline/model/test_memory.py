"""A model's memory estimated from its files: the files each format's loader reads, and the load factor, checked
against what loading a SavedModel of 96 MB really adds to a process's peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline.model.files import ModelFormat, locate_model
from pipeline.model.memory import LOAD_FACTORS, ModelCopies, files_bytes, loaded_bytes
from tests.conftest import ROOT


def sizes(paths) -> int:
    return sum(path.stat().st_size for path in paths if path.is_file())


def test_the_size_of_a_model_is_that_of_the_files_its_loader_reads(tiny_models, tmp_path):
    saved = tiny_models["saved_model_flat"]
    assert files_bytes(locate_model(str(saved))) == sizes(saved.rglob("*"))
    assert files_bytes(locate_model(str(tiny_models["keras"]))) == tiny_models["keras"].stat().st_size
    prefix = tiny_models["tf1"]
    assert files_bytes(locate_model(str(prefix))) == sizes(prefix.parent.glob("export.*"))  # not `checkpoint`


def test_a_loaded_model_is_estimated_by_its_formats_factor(tiny_models):
    location = locate_model(str(tiny_models["keras"]))
    assert loaded_bytes(location, 1000) == int(1000 * LOAD_FACTORS[ModelFormat.KERAS])
    assert set(LOAD_FACTORS) == set(ModelFormat)


def test_the_layout_says_itself_with_its_reason():
    assert ModelCopies().describe() == "one per process (the default)"
    assert ModelCopies(per_vm=True, reason="GPU workers").describe() == "one per VM (GPU workers)"


_LOAD = """
import json, sys
from pipeline.model.runtime import import_tensorflow
import_tensorflow()
from pipeline.model.files import locate_model
from pipeline.model.loading import load_model
def peak():
    return int(dict(line.split(":", 1) for line in open("/proc/self/status"))["VmHWM"].split()[0]) * 1024
location = locate_model(sys.argv[1])
open("/proc/self/clear_refs", "w").write("5")  # the peak from here on
before = peak()
load_model(location.path, location).predict({"x": __import__("numpy").ones((8, 4096), "float32")})
print(json.dumps({"grown": peak() - before}))
"""


def test_loading_a_saved_model_adds_no_more_than_its_factor_times_its_files(tmp_path):
    """The factor launch decisions rest on (`launch.model_memory`), measured in a process of its own."""
    import tensorflow as tf

    module = tf.Module()
    module.kernel = tf.Variable(np.random.default_rng(0).random((4096, 6144), dtype=np.float32))  # 96 MiB

    @tf.function(input_signature=[tf.TensorSpec([None, 4096], tf.float32, name="x")])
    def serve(x):
        return {"y": tf.matmul(x, module.kernel)}

    module.serve = serve
    path = Path(tmp_path / "wide")
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    size = files_bytes(locate_model(str(path)))
    child = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)],
        env={**os.environ, "PYTHONPATH": str(ROOT / "template")},
        capture_output=True,
        text=True,
        check=True,
    )
    grown = json.loads(child.stdout.strip().splitlines()[-1])["grown"]
    # Beyond the variables: the graph, and TensorFlow's buffers for a first call (about 20 MiB here), which the
    # allowance for each SDK process counts (`launch.model_memory.SDK_PROCESS_BYTES`).
    assert 0.9 * size < grown <= LOAD_FACTORS[ModelFormat.SAVED_MODEL] * size + (32 << 20), (grown, size)
