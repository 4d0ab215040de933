"""The model handler: instance batches in, named outputs out, and failures turned into dead letters."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
from apache_beam.utils.multi_process_shared import MultiProcessShared

from pipeline.data.batches import InstanceBatch, RecordBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.errors import NoGpuError
from pipeline.job.inference import InstanceBatchModelHandler
from pipeline.model.versions import Version
from tests.conftest import ROOT, SAMPLE_MODEL
from tests.model_factories import CLASSES, WIDTH, reference_scores
from tests.outputs import predictions_and_dead_letters


def batch_of(count: int) -> InstanceBatch:
    images = np.random.default_rng(5).random((count, WIDTH), dtype=np.float32)
    source = RecordBatch("in.txt", 1, [f"{key}:...".encode() for key in range(count)])
    return InstanceBatch(np.arange(count, dtype=np.int64), {"image": images}, source, np.arange(count))


def test_handler_calls_the_model_by_input_name_and_measures_without_pickling(tiny_models):
    handler = InstanceBatchModelHandler(str(tiny_models["saved_model_flat"]), ("scores",))
    batch = batch_of(7)
    (scored,) = handler.run_inference(batch, handler.load_model())
    assert scored.instances is batch
    np.testing.assert_allclose(scored.outputs["scores"], reference_scores(batch.features["image"]), atol=1e-6)
    assert handler.get_num_bytes(batch) == 7 * WIDTH * 4
    assert handler.should_skip_batching()
    assert not handler.share_model_across_processes()


def test_the_threads_of_a_cpu_worker_process_share_one_loaded_model(tiny_models):
    """Each DoFn thread holds its own handler (a copy of the pickled one); the model they load is one object."""
    path = str(tiny_models["saved_model_flat"])
    first, second = InstanceBatchModelHandler(path, ("scores",)), InstanceBatchModelHandler(path, ("scores",))
    assert first.load_model().loaded is second.load_model().loaded


def test_a_model_shared_by_a_vms_processes_is_scored_where_it_lives_and_only_data_crosses(tiny_models):
    """Beam's proxy of one model copy per VM pickles every argument and result of a call: the scoring must
    run behind it, never hand the model itself across."""
    handler = InstanceBatchModelHandler(str(tiny_models["saved_model_flat"]), ("scores",))
    proxy = MultiProcessShared(handler.load_model, tag=f"test-{uuid.uuid4().hex}", always_proxy=True).acquire()
    batch = batch_of(5)
    (scored,) = handler.run_inference(batch, proxy)
    np.testing.assert_allclose(scored.outputs["scores"], reference_scores(batch.features["image"]), atol=1e-6)
    assert list(scored.instances.keys) == list(range(5))


def test_gpu_workers_and_large_models_ask_beam_for_one_model_copy_shared_by_a_vms_processes():
    handler = InstanceBatchModelHandler("gs://b/model", ("scores",), shared_on_worker=True)
    assert handler.share_model_across_processes() and handler.model_copies() == 1


def test_one_model_copy_per_vm_serves_every_worker_process_of_a_multi_process_run(
    tmp_path, sample_lines, sample_scores
):
    """A real local run in two SDK processes with --model_copies=per_vm: one process loads the model and serves
    it, the other scores through Beam's proxy (four files, so that both get work), and every prediction is the
    model's own. Each shared copy's server leaves its address file in the run's temporary folder: one copy."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for part in range(4):
        (inputs / f"part-{part}.txt").write_bytes(b"\n".join(sample_lines[part * 500 : part * 500 + 500]) + b"\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    output = tmp_path / "out" / "predictions"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "template" / "main.py"),
            f"--input={inputs}/part-*.txt",
            f"--output={output}",
            f"--model={SAMPLE_MODEL}",
            "--model_copies=per_vm",
            "--statistics=off",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ],
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "model copies         one per VM (local run, --model_copies=per_vm)" in run.stdout
    rows, dead_letters = predictions_and_dead_letters(output)
    assert dead_letters == [] and sorted(row["key"] for row in rows) == list(range(2000))
    scores = np.array(
        [[row[f"pred{digit}"] for digit in range(10)] for row in sorted(rows, key=lambda row: row["key"])]
    )
    np.testing.assert_allclose(scores, sample_scores[:2000], atol=1e-5)
    # Beam's servers: one per model copy (<tag><copy>.address) beside the model's status (<tag>_model_status).
    copies = [path.name for path in temp.glob("*.address") if not path.name.endswith("_model_status.address")]
    assert len(copies) == 1 and copies[0].endswith("0.address")


def test_a_gpu_job_refuses_to_load_its_model_where_tensorflow_sees_no_gpu(tiny_models):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: the refusal cannot be seen here")
    handler = InstanceBatchModelHandler(str(tiny_models["saved_model_flat"]), ("scores",), gpu=True)
    with pytest.raises(NoGpuError, match="asked for GPU workers, but TensorFlow sees no GPU"):
        handler.load_model()


def test_outputs_of_the_wrong_shape_or_missing_fail_each_record_alone(tiny_models):
    handler = InstanceBatchModelHandler(str(tiny_models["saved_model_flat"]), ("scores",))

    class OneRowTooMany:
        def predict(self, features):
            return {"scores": np.zeros((len(features["image"]) + 1, CLASSES), dtype=np.float32)}

    class Broken:
        def serving(self):
            return Version(None, "m", "m", OneRowTooMany()), None

        def run(self, work, item):
            return work(self, item)

    letters = list(handler.run_inference(batch_of(2), Broken()))
    assert [letter.payload for letter in letters] == [b"0:...", b"1:..."]
    assert all(
        isinstance(letter, DeadLetter) and "output 'scores' has shape (2, 3)" in letter.message for letter in letters
    )
    letters = list(InstanceBatchModelHandler("m", ("probabilities",)).run_inference(batch_of(2), handler.load_model()))
    assert len(letters) == 2 and all("returned no output ['probabilities']" in letter.message for letter in letters)
    assert {letter.reason for letter in letters} == {Reason.INFERENCE_FAILED}
