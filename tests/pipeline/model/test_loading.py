"""Every model format loads, reports its signature and predicts what the network computes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ModelError
from pipeline.model.files import ModelFormat, locate_model
from pipeline.model.loading import load_model, predict_checked
from pipeline.model.signatures import TensorSpec, read_signature
from tests.conftest import SAMPLE_MODEL
from tests.model_factories import (
    CLASSES,
    IMAGE_SHAPE,
    WIDTH,
    lambda_keras_file,
    multi_signature_saved_model,
    reference_logits,
    reference_scores,
)

IMAGES = np.random.default_rng(1).random((5, WIDTH), dtype=np.float32)
KEYS = np.arange(5, dtype=np.int64)


@pytest.mark.parametrize(
    ("name", "model_format", "input_shape"),
    [
        ("saved_model_flat", ModelFormat.SAVED_MODEL, (WIDTH,)),
        ("saved_model_shaped", ModelFormat.SAVED_MODEL, IMAGE_SHAPE),
        ("keras", ModelFormat.KERAS, IMAGE_SHAPE),
        ("tf1", ModelFormat.TF1_CHECKPOINT, (WIDTH,)),
    ],
)
def test_each_format_loads_reports_its_signature_and_predicts_by_name(tiny_models, name, model_format, input_shape):
    model = load_model(str(tiny_models[name]))
    signature = model.get_signature()
    assert signature.format is model_format
    assert signature.input("image") == TensorSpec("image", "float32", input_shape)
    assert TensorSpec("scores", "float32", (CLASSES,)) in signature.outputs
    assert read_signature(locate_model(str(tiny_models[name]))) == signature  # without the weights: the same
    features = {"image": IMAGES.reshape(-1, *input_shape)}
    if signature.input("key") is not None:
        features["key"] = KEYS
    scores = model.predict(features)["scores"]
    assert scores.shape == (5, CLASSES)
    np.testing.assert_allclose(scores, reference_scores(IMAGES), atol=1e-6)


def test_load_model_is_shared_within_a_process(tiny_models):
    path = str(tiny_models["saved_model_flat"])
    assert load_model(path) is load_model(path)


def test_seed_metagraph_with_sample_weights_predicts_like_the_sample_savedmodel(legacy_checkpoint, sample_lines):
    legacy = load_model(str(legacy_checkpoint))
    sample = load_model(str(SAMPLE_MODEL))
    assert legacy.get_signature().inputs == (
        TensorSpec("image", "float32", (784,)),
        TensorSpec("key", "int64", ()),
    )
    assert legacy.get_signature().outputs == (TensorSpec("key", "int64", ()), TensorSpec("scores", "float32", (10,)))
    assert sample.get_signature().input("image").shape == (28, 28, 1)
    images = np.array([line.split(b":")[1].split(b",") for line in sample_lines[:64]], dtype=np.float32)
    legacy_out = legacy.predict({"image": images, "key": np.arange(64)})
    assert legacy_out["key"].tolist() == list(range(64))
    sample_scores = sample.predict({"image": images.reshape(-1, 28, 28, 1)})["scores"]
    np.testing.assert_allclose(legacy_out["scores"], sample_scores, atol=1e-5)


def test_keras_file_with_code_is_refused_by_safe_mode(tmp_path):
    path = lambda_keras_file(tmp_path / "lambda.keras")
    with pytest.raises(ModelError, match="does not load safely") as error:
        load_model(str(path))
    assert "\n" not in str(error.value)


def test_corrupt_savedmodel_is_a_clear_error(tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(ModelError, match="does not load"):
        load_model(str(tmp_path / "broken"))


def test_checkpoint_without_weights_is_a_clear_error(tmp_path, shared_dir):
    prefix = tmp_path / "export"
    prefix.with_suffix(".meta").write_bytes((shared_dir / "data/seed-model/export.meta").read_bytes())
    with pytest.raises(ModelError, match="weights do not restore"):
        load_model(str(prefix))


def test_half_precision_outputs_come_back_as_float32(tmp_path):
    import tensorflow as tf

    class HalfPrecision(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def serve(self, x):
            return {"half": tf.cast(x, tf.float16), "brain": tf.cast(x * 2, tf.bfloat16)}

    module = HalfPrecision()
    tf.saved_model.save(module, str(tmp_path / "half"), signatures={"serving_default": module.serve})
    model = load_model(str(tmp_path / "half"))
    outputs = predict_checked(model, {"x": np.array([[1.5, np.inf]], dtype=np.float32)}, ("half", "brain"))
    assert {array.dtype for array in outputs.values()} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(outputs["brain"], [[3.0, np.inf]])


@pytest.fixture(scope="module")
def two_signatures(tmp_path_factory) -> str:
    return str(multi_signature_saved_model(tmp_path_factory.mktemp("signatures") / "model"))


def test_a_savedmodel_is_called_through_the_signature_its_location_names(two_signatures):
    model = load_model(two_signatures, locate_model(two_signatures, "predict"))
    assert model.get_signature().outputs == (TensorSpec("logits", "float32", (CLASSES,)),)
    logits = model.predict({"image": IMAGES})["logits"]
    np.testing.assert_allclose(logits, reference_logits(IMAGES), atol=1e-5)


def test_each_signature_of_one_path_is_its_own_model(two_signatures):
    """The process-wide cache holds one model per signature, not one per path."""
    predict = load_model(two_signatures, locate_model(two_signatures, "predict"))
    default = load_model(two_signatures)
    assert default is not predict
    assert default is load_model(two_signatures, locate_model(two_signatures))
    np.testing.assert_allclose(default.predict({"image": IMAGES})["scores"], reference_scores(IMAGES), atol=1e-6)


def test_loading_a_signature_the_savedmodel_lacks_names_those_it_has(two_signatures):
    with pytest.raises(ModelError) as error:
        load_model(two_signatures, locate_model(two_signatures, "nope"))
    assert str(error.value) == (
        f"--signature_name=nope: the SavedModel {two_signatures} has no 'nope' signature; it has predict, "
        "serving_default"
    )
