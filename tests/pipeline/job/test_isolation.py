"""Failure isolation: a record the model fails on costs only itself, against a clean run of the same model."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter, Reason
from pipeline.errors import ModelBroken, ModelFault
from pipeline.job import isolation
from pipeline.job.isolation import Scorer, error_line, is_runtime_fault
from pipeline.model.health import BROKEN_AFTER, GROW_AFTER, ModelHealth
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
        assert letter.code == (3 if kind == "tensorflow" else None)  # TensorFlow's google.rpc code, as it carries it
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
        assert health.batch_limit == 32
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


def test_after_successes_a_batch_job_stops_once_more_than_the_share_of_recent_records_fail_alone():
    health = ModelHealth()
    scorer = Scorer(CountingModel(), "m", health, max_failure_share=0.5)
    scorer.score(batch_of(images_with_bad(2000, set())))  # a long clean start does not shield it
    with pytest.raises(ModelBroken, match=r"failed on \d+% of the last 1,000 records alone, more than "):
        scorer.score(batch_of(images_with_bad(1200, set(range(1200)))))


def test_below_the_share_bad_records_are_dead_letters_and_the_job_goes_on():
    health = ModelHealth()
    scorer = Scorer(CountingModel(), "m", health, max_failure_share=0.5)
    bad = set(range(0, 3000, 3))  # a third of the records
    scored, letters = split_results(scorer.score(batch_of(images_with_bad(3000, bad))))
    assert len(letters) == len(bad) and len(predicted_keys(scored)) == 3000 - len(bad)


def test_a_stream_whose_model_fails_every_record_goes_on_and_says_so_once_a_minute(caplog):
    scorer = Scorer(CountingModel(), "m", ModelHealth(), stop_when_broken=False)
    with caplog.at_level(logging.WARNING, logger="pipeline.job.isolation"):
        for _ in range(3):
            scored, letters = split_results(scorer.score(batch_of(images_with_bad(150, set(range(150))))))
            assert not scored and len(letters) == 150
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "they are dead letters and the stream goes on" in said[0]


class FaultyModel(CountingModel):
    """Raises a runtime fault (by TensorFlow's type name) for its first `faults` calls."""

    def __init__(self, faults: int, error_type: str = "InternalError"):
        super().__init__()
        self.faults = faults
        self.error_type = type(error_type, (Exception,), {})

    def __call__(self, features):
        if self.faults:
            self.faults -= 1
            self.calls.append(len(features["image"]))
            raise self.error_type("CUDA error: an illegal memory access was encountered")
        return super().__call__(features)


@pytest.mark.parametrize("name", isolation.RUNTIME_FAULTS)
def test_a_runtime_fault_is_not_a_dead_letter_but_fails_the_bundle_for_the_runner_to_retry(monkeypatch, name):
    monkeypatch.setattr(isolation, "FAULT_BACKOFF_S", 0.0)
    model = FaultyModel(faults=10, error_type=name)
    with pytest.raises(ModelFault, match=rf"runtime failed 3 times in a row, .* {name}: CUDA error"):
        Scorer(model, "m", ModelHealth()).score(batch_of(images_with_bad(64, set())))
    assert model.calls == [64, 64, 64]  # retried whole, never split into records to blame


def test_a_passing_runtime_fault_is_retried_and_costs_no_record(monkeypatch):
    monkeypatch.setattr(isolation, "FAULT_BACKOFF_S", 0.0)
    health = ModelHealth()
    scored, letters = split_results(
        Scorer(FaultyModel(faults=1), "m", health).score(batch_of(images_with_bad(64, set())))
    )
    assert not letters and predicted_keys(scored) == list(range(64)) and health.failed_alone == 0


def test_runtime_faults_are_told_from_record_errors_by_type():
    import tensorflow as tf

    assert is_runtime_fault(tf.errors.InternalError(None, None, "device lost"))
    assert is_runtime_fault(tf.errors.UnavailableError(None, None, "socket closed"))
    assert not is_runtime_fault(tf.errors.InvalidArgumentError(None, None, "assertion failed"))
    assert not is_runtime_fault(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating"))
    assert not is_runtime_fault(ValueError("bad input"))


class OneGiantRecord(CountingModel):
    """Runs out of memory on any batch holding record 5, even alone: the record is too large, not the batch."""

    def __call__(self, features):
        images = features["image"]
        if (images[:, 0] == -5.0).any():
            self.calls.append(len(images))
            raise MemoryError("cannot allocate")
        return super().__call__(features)


def test_a_record_too_large_alone_is_its_dead_letter_and_teaches_no_batch_limit():
    images = images_with_bad(256, set())
    images[5, 0] = -5.0
    health = ModelHealth()
    scored, letters = split_results(Scorer(OneGiantRecord(), "m", health).score(batch_of(images)))
    assert len(letters) == 1 and "ran out of memory on this record alone" in letters[0].message
    assert letters[0].code == 8  # google.rpc.Code RESOURCE_EXHAUSTED
    assert len(predicted_keys(scored)) == 255 and health.batch_limit is None


class FitsUnevenly(CountingModel):
    """Runs out of memory on batches of more than 64 records whose first record is marked (0.002): a half of
    128 may fit while the other does not, so only 64 is known to fit."""

    def __call__(self, features):
        images = features["image"]
        if len(images) > 64 and images[0, 0] == np.float32(0.002):
            self.calls.append(len(images))
            raise MemoryError("cannot allocate")
        return super().__call__(features)


def test_the_batch_limit_is_a_size_that_fitted_below_every_size_that_ran_out():
    images = images_with_bad(256, set())
    images[:, 0] = np.where(np.arange(256) < 128, 0.002, 0.001)  # the first half's records are marked
    health = ModelHealth()
    Scorer(FitsUnevenly(), "m", health).score(batch_of(images))
    assert health.batch_limit == 64  # the second half's 128 fitted, but the first half's 128 did not


def test_a_learned_batch_limit_grows_back_after_calls_that_fit():
    model = CountingModel(fits=40)
    health = ModelHealth()
    scorer = Scorer(model, "m", health)
    scorer.score(batch_of(images_with_bad(64, set())))
    assert health.batch_limit == 32
    model.fits = None  # memory freed: the model now takes whole batches
    for _ in range(GROW_AFTER):
        scorer.score(batch_of(images_with_bad(32, set())))
    assert health.batch_limit == 64
    model.calls.clear()
    scorer.score(batch_of(images_with_bad(64, set())))
    assert model.calls == [64]


def test_tensorflow_errors_become_one_readable_line():
    import tensorflow as tf

    message = (
        "Graph execution error:\n\nDetected at node zeros defined at (most recent call last):\n"
        '  File "/x.py", line 11, in <module>\n\n<stack traces unavailable>\nassertion failed: [age must not be '
        "negative]\n\t [[{{node assert/Assert}}]] [Op:__inference_serve_72]"
    )
    error = tf.errors.InvalidArgumentError(None, None, message)
    assert error_line(error) == "InvalidArgumentError: assertion failed: [age must not be negative]"
