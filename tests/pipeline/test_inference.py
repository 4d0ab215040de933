"""The model handler: batches in, scores out, and failures turned into dead letters."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.inference import ImageBatchModelHandler, failed_batch_dead_letters
from pipeline.records import ImageBatch, RawRecord, Reason
from tests.model_factories import CLASSES, WIDTH, reference_scores


def batch_of(count: int) -> ImageBatch:
    images = np.random.default_rng(5).random((count, WIDTH), dtype=np.float32)
    records = tuple(RawRecord("in.txt", f"{key}:...".encode()) for key in range(count))
    return ImageBatch(np.arange(count, dtype=np.int64), images, records)


def test_handler_scores_a_batch_and_measures_it_without_pickling(tiny_models):
    handler = ImageBatchModelHandler(str(tiny_models["saved_model_flat"]))
    batch = batch_of(7)
    (scored,) = handler.run_inference(batch, handler.load_model())
    assert scored.keys.tolist() == list(range(7))
    assert scored.records == batch.records
    np.testing.assert_allclose(scored.scores, reference_scores(batch.images), atol=1e-6)
    assert handler.get_num_bytes(batch) == 7 * WIDTH * 4 + 7 * 8
    assert handler.should_skip_batching()


def test_handler_refuses_scores_of_the_wrong_shape(tiny_models):
    handler = ImageBatchModelHandler(str(tiny_models["saved_model_flat"]))

    class Broken:
        signature = handler.load_model().signature

        def predict(self, images, keys):
            return np.zeros((len(images), CLASSES + 1), dtype=np.float32)

    with pytest.raises(ValueError, match="scores of shape"):
        handler.run_inference(batch_of(2), Broken())


def test_a_failed_batch_becomes_one_dead_letter_per_record():
    trace = ["Traceback (most recent call last):\n", '  File "x", line 1\n', "ValueError: bad input\nsecond line\n"]
    dead = failed_batch_dead_letters((batch_of(3), (ValueError, "ValueError()", trace)))
    assert [letter.payload for letter in dead] == [b"0:...", b"1:...", b"2:..."]
    assert {letter.reason for letter in dead} == {Reason.INFERENCE_FAILED}
    assert dead[0].message == "the model failed on this record's batch: ValueError: bad input second line"
    assert dead[0].stacktrace == "".join(trace)
