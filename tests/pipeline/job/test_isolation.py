"""Failure isolation: a record the model fails on costs only itself, against a clean run of the same model."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.errors import ModelBroken
from pipeline.job.isolation import BROKEN_AFTER, ModelHealth, Scorer, error_line
from pipeline.model.loading import load_model
from tests.model_factories import WIDTH, failing_saved_model, reference_scores

BAD_VALUE = 500.0  # failing_saved_model refuses any batch holding a value >= 100


def batch_of(images: np.ndarray, origin: str = "in.txt") -> InstanceBatch:
    count = len(images)
    source = RecordBatch(origin, 1, [f"{key}:row{key}".encode() for key in range(count)])
    return InstanceBatch(np.arange(count, dtype=np.int64), {"image": images}, source, np.arange(count))


def images_with_bad(count: int, bad: set[int], seed: int = 0) -> np.ndarray:
    images = np.random.default_rng(seed).random((count, WIDTH), dtype=np.float32)
    for position in bad:
        images[position, position % WIDTH] = BAD_VALUE + position  # each bad record is bad in its own way
    return images


class CountingModel:
    """A NumPy model: the reference scores, or an error naming the first bad value of the batch; counts calls."""

    def __init__(self, error: type[Exception] = ValueError, fits: int | None = None):
        self.error = error
        self.fits = fits
        self.calls: list[int] = []

    def __call__(self, features: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int | None]:
        images = features["image"]
        self.calls.append(len(images))
        if self.fits is not None and len(images) > self.fits:
            raise MemoryError(f"cannot allocate {len(images)} x 1 GiB")
        bad = images[images >= BAD_VALUE]
        if bad.size:
            raise self.error(f"value {bad[0]:.0f} is out of range")
        return {"scores": reference_scores(images).astype(np.float32)}, None


def split_results(results: list) -> tuple[list[ScoredBatch], list[DeadLetter]]:
    scored = [result for result in results if isinstance(result, ScoredBatch)]
    letters = [result for result in results if isinstance(result, DeadLetter)]
    assert len(scored) + len(letters) == len(results)
    return scored, letters


def predicted_keys(scored: list[ScoredBatch]) -> list[int]:
    return [int(key) for batch in scored for key in batch.instances.keys]


@pytest.fixture(scope="module")
def failing_model(tmp_path_factory):
    """A real SavedModel whose graph asserts every value is below 100 (InvalidArgumentError otherwise)."""
    return load_model(str(failing_saved_model(tmp_path_factory.mktemp("failing") / "model")))


def real_predict(model):
    return lambda features: (model.predict(features), None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), count=st.integers(1, 300), kind=st.sampled_from(["tensorflow", "value_error", "type_error"]))
def test_only_the_bad_records_fail_and_the_rest_score_as_in_a_clean_run(failing_model, data, count, kind):
    bad = data.draw(st.sets(st.integers(0, count - 1), max_size=min(count - 1, 12)), label="bad positions")
    images = images_with_bad(count, bad, seed=count)
    if kind == "tensorflow":
        predict, expected_error = real_predict(failing_model), "InvalidArgumentError: assertion failed"
    else:
        predict = CountingModel(ValueError if kind == "value_error" else TypeError)
        expected_error = "ValueError: value" if kind == "value_error" else "TypeError: value"

    scored, letters = split_results(Scorer(predict, "m", ModelHealth()).score(batch_of(images)))

    keys = predicted_keys(scored)
    assert sorted(keys) == sorted(set(range(count)) - bad) and len(keys) == len(set(keys))
    assert sorted(letter.payload for letter in letters) == sorted(f"{key}:row{key}".encode() for key in bad)
    for batch in scored:  # the same numbers as a clean run of the good records
        good = batch.instances.keys
        clean = reference_scores(images_with_bad(count, set(), seed=count)[good])
        np.testing.assert_allclose(batch.outputs["scores"], clean, atol=1e-5)
    for letter in letters:
        key = int(letter.payload.split(b":")[0])
        assert letter.reason == Reason.INFERENCE_FAILED and letter.origin == "in.txt"
        assert letter.position == f"in.txt:{key + 1}"
        assert letter.message.startswith(f"the model failed on this record: {expected_error}")
        if kind != "tensorflow":  # the error is the record's own, not its batch's
            assert f"value {BAD_VALUE + key:.0f} is out of range" in letter.message
        assert letter.stacktrace


def test_a_clean_batch_costs_one_call():
    model = CountingModel()
    scored, letters = split_results(Scorer(model, "m", ModelHealth()).score(batch_of(images_with_bad(256, set()))))
    assert model.calls == [256] and not letters and predicted_keys(scored) == list(range(256))


@pytest.mark.parametrize(("bad", "calls"), [(0, 17), (255, 10), (100, 14)])
def test_one_bad_record_among_256_costs_one_or_two_calls_per_halving(bad, calls):
    model = CountingModel()
    _, letters = split_results(Scorer(model, "m", ModelHealth()).score(batch_of(images_with_bad(256, {bad}))))
    assert len(letters) == 1
    # After the failed call of 256, each of the 8 halvings calls the first half, and the second
    # only when the first failed (the bad record is there); a lone bad record in a second half is
    # still called, for its own error. In binary, a 0 is a first half: 1 + 2 per 0 + 1 per 1 (+ 1
    # if the last bit is 1): 0 -> 1 + 16, 255 -> 1 + 8 + 1, 100 = 0b01100100 -> 1 + 10 + 3.
    assert len(model.calls) == calls


def test_a_batch_too_large_for_memory_is_split_and_the_size_that_fits_is_said_once(caplog):
    model = CountingModel(fits=40)
    health = ModelHealth()
    scorer = Scorer(model, "gs://b/model", health)
    with caplog.at_level(logging.WARNING, logger="pipeline.job.isolation"):
        scored, letters = split_results(scorer.score(batch_of(images_with_bad(256, {3}))))
        assert sorted(predicted_keys(scored)) == sorted(set(range(256)) - {3}) and len(letters) == 1
        assert health.fitting_batch == 32
        model.calls.clear()
        scored, _ = split_results(scorer.score(batch_of(images_with_bad(100, set()))))
    assert model.calls == [32, 32, 32, 4]  # later batches go straight to the size that fits
    assert predicted_keys(scored) == list(range(100))
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "batches of 256 records ran out of memory; 32 records per model call fit" in said[0]


def test_a_model_that_fails_on_every_record_stops_after_the_first_hundred():
    model = CountingModel()
    images = images_with_bad(BROKEN_AFTER + 50, set(range(BROKEN_AFTER + 50)))
    with pytest.raises(ModelBroken, match=rf"failed on each of the first {BROKEN_AFTER} records .* ValueError: value"):
        Scorer(model, "m", ModelHealth()).score(batch_of(images))


def test_a_model_that_has_predicted_once_is_not_broken_however_many_records_fail_after():
    health = ModelHealth()
    scorer = Scorer(CountingModel(), "m", health)
    scorer.score(batch_of(images_with_bad(1, set())))
    scored, letters = split_results(scorer.score(batch_of(images_with_bad(300, set(range(300))))))
    assert not scored and len(letters) == 300 and health.failed_alone == 300


def test_tensorflow_errors_become_one_readable_line():
    import tensorflow as tf

    message = (
        "Graph execution error:\n\nDetected at node zeros defined at (most recent call last):\n"
        '  File "/x.py", line 11, in <module>\n\n<stack traces unavailable>\nassertion failed: [age must not be '
        "negative]\n\t [[{{node assert/Assert}}]] [Op:__inference_serve_72]"
    )
    error = tf.errors.InvalidArgumentError(None, None, message)
    assert error_line(error) == "InvalidArgumentError: assertion failed: [age must not be negative]"
