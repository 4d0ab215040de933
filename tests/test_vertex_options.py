"""Vertex AI batch prediction's options, end to end as a Vertex AI user gives them: the fields fed to
the model (instance_fields, excluded_fields), array instances, a signature other than the default,
Vertex AI's output shape; and the Console form's pickers. Each mistake is one line at launch.

(Vertex AI's shape in BigQuery is in tests/test_cloud_io.py, beside the other BigQuery outputs.)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from main import run
from tests.conftest import SAMPLES
from tests.model_factories import WIDTH, multi_signature_saved_model, reference_logits, reference_scores
from tests.outputs import predictions_and_dead_letters

pytestmark = pytest.mark.slow

PENGUINS = SAMPLES / "penguins"
PENGUIN_MODEL = PENGUINS / "model"
PENGUIN_INPUTS = "bill_depth_mm, bill_length_mm, body_mass_g, flipper_length_mm, island, sex"  # signature order
VALUES = np.random.default_rng(3).uniform(-1, 1, size=(20, WIDTH)).round(3)
COLUMNS = [f"v{index}" for index in range(WIDTH)]


def predict(tmp_path: Path, capfd, *args: str) -> tuple[list[dict], list[dict]]:
    output = tmp_path / "out" / "p"
    status = run([*args, f"--output={output}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    return predictions_and_dead_letters(output)


def launch_error(capfd, tmp_path: Path, *args: str) -> str:
    assert run([*args, f"--output={tmp_path / 'refused' / 'p'}"]) == 2
    error = capfd.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    return error.removeprefix("error: ")


@pytest.fixture(scope="module")
def keyless_penguins(tmp_path_factory) -> Path:
    """The penguins CSV without its key column: Vertex AI's case for excluded fields copied back."""
    path = tmp_path_factory.mktemp("penguins") / "penguins.csv"
    with open(PENGUINS / "penguins.csv", newline="") as source, open(path, "w", newline="") as target:
        rows = list(csv.DictReader(source))
        writer = csv.DictWriter(target, [name for name in rows[0] if name != "key"])
        writer.writeheader()
        writer.writerows({name: value for name, value in row.items() if name != "key"} for row in rows)
    return path


@pytest.fixture(scope="module")
def value_columns(tmp_path_factory) -> Path:
    """id, v0..v11, note as CSV: the twelve v fields, as an array instance, feed the tiny flat model."""
    path = tmp_path_factory.mktemp("columns") / "values.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", *COLUMNS, "note"])
        writer.writerows([key, *row, f"n{key}"] for key, row in enumerate(VALUES.tolist()))
        writer.writerow([99, *(["x"] * WIDTH), "bad"])
    return path


@pytest.fixture(scope="module")
def two_signatures(tmp_path_factory) -> Path:
    return multi_signature_saved_model(tmp_path_factory.mktemp("signatures") / "model")


def test_excluded_fields_are_not_fed_and_come_back_beside_the_prediction_where_records_have_no_key(
    tmp_path, capfd, keyless_penguins
):
    predictions, dead_letters = predict(
        tmp_path,
        capfd,
        f"--input={keyless_penguins}",
        f"--model={PENGUIN_MODEL}",
        "--excluded_fields=species",
        "--output_shape=vertex",
        "--instance_type=object",  # Vertex AI's default for CSV is an array; this model takes its inputs by name
    )
    assert len(predictions) == 333 and not dead_letters
    first = predictions[0]
    assert set(first) == {"instance", "prediction", "species"}
    assert first["instance"] == {
        "bill_depth_mm": 18.7,
        "bill_length_mm": 39.1,
        "body_mass_g": 3750.0,
        "flipper_length_mm": 181.0,
        "island": "Torgersen",
        "sex": "male",
    }  # the instance as fed: the label is not in it, and floats read back as written
    assert set(first["prediction"]) == {"probabilities", "species"}
    right = sum(row["prediction"]["species"] == row["species"] for row in predictions)
    assert right >= 0.9 * 333  # the label copied back joins each prediction to its truth


def test_excluded_fields_over_an_output_of_the_same_name_are_one_line(capfd, tmp_path, keyless_penguins):
    args = (f"--input={keyless_penguins}", f"--model={PENGUIN_MODEL}", "--excluded_fields=species")
    assert launch_error(capfd, tmp_path, *args) == (
        "--excluded_fields: species would be copied to the output (records without a key field get their "
        "excluded fields back, as in Vertex AI) over a column of the same name; key the records (--key_field) "
        "or use --output_shape=vertex"
    )


def test_a_key_field_given_writes_the_key_in_place_of_the_instance_and_keeps_excluded_fields_out(tmp_path, capfd):
    """InstanceConfig.keyField: the output has `key` instead of `instance`; excluded fields are attached only
    where no key field is given."""
    predictions, _ = predict(
        tmp_path,
        capfd,
        f"--input={PENGUINS / 'penguins.jsonl'}",
        f"--model={PENGUIN_MODEL}",
        "--excluded_fields=species",
        "--key_field=key",
        "--output_shape=vertex",
    )
    assert len(predictions) == 333
    assert set(predictions[0]) == {"key", "prediction"} and predictions[0]["key"] == 0


def test_without_a_key_field_given_a_field_named_key_is_excluded_and_attached_like_any_other(tmp_path, capfd):
    """The issue's case: records with a `key` field, sent as a Vertex AI user sends them to a model that does
    not take it (excludedFields key,species): each line is the instance and prediction, the excluded fields
    attached beside them, as Vertex AI attaches excluded fields where keyField is not set."""
    predictions, _ = predict(
        tmp_path,
        capfd,
        f"--input={PENGUINS / 'penguins.jsonl'}",
        f"--model={PENGUIN_MODEL}",
        "--excluded_fields=key,species",
        "--output_shape=vertex",
    )
    assert len(predictions) == 333
    first = min(predictions, key=lambda row: row["key"])
    assert set(first) == {"instance", "prediction", "key", "species"}
    assert (first["key"], first["species"], first["instance"]["island"]) == (0, "Adelie", "Torgersen")
    assert "key" not in first["instance"] and "species" not in first["instance"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--instance_fields=island,sex",
            "--instance_fields leaves out the model's input(s) bill_depth_mm, bill_length_mm, body_mass_g, "
            f"flipper_length_mm; a model is fed every input it takes (it takes {PENGUIN_INPUTS})",
        ),
        (
            "--excluded_fields=sex,species",
            "--excluded_fields excludes the model's input(s) sex; a model is fed every input it takes",
        ),
        (
            f"--instance_fields={PENGUIN_INPUTS.replace(' ', '')},beak",
            "--instance_fields: the records have no field beak",
        ),
        (
            "--instance_type=array",
            "--instance_type=array feeds one array to a model with one input of one dimension; "
            f"{PENGUIN_MODEL} takes bill_depth_mm float32 (None,), bill_length_mm float32 (None,), body_mass_g "
            "float32 (None,), flipper_length_mm float32 (None,), island string (None,), sex string (None,)",
        ),
        ("--instance_type=matrix", "--instance_type=matrix: must be object or array"),
        (
            "--instance_fields=island --excluded_fields=sex",
            "--instance_fields and --excluded_fields are both set; give one of them, as in Vertex AI",
        ),
        ("--output_shape=tfrecord", "--output_shape=tfrecord: must be rows or vertex"),
    ],
)
def test_instance_option_mistakes_are_one_line(capfd, tmp_path, option, message):
    args = [f"--input={PENGUINS / 'penguins.csv'}", f"--model={PENGUIN_MODEL}", *option.split()]
    assert launch_error(capfd, tmp_path, *args) == message


def test_instance_fields_that_hold_every_input_feed_the_model(tmp_path, capfd):
    predictions, _ = predict(
        tmp_path,
        capfd,
        f"--input={PENGUINS / 'penguins.csv'}",
        f"--model={PENGUIN_MODEL}",
        f"--instance_fields={PENGUIN_INPUTS.replace(' ', '')}",
    )
    assert len(predictions) == 333 and {"key", "probabilities", "species"} == set(predictions[0])


def test_an_array_instance_feeds_csv_columns_in_header_order_and_says_which_records_do_not_fit(
    tmp_path, capfd, tiny_models, value_columns
):
    predictions, dead_letters = predict(
        tmp_path,
        capfd,
        f"--input={value_columns}",
        f"--model={tiny_models['saved_model_flat']}",
        "--key_field=id",
        "--excluded_fields=note",
        "--instance_type=array",
        "--output_shape=vertex",
    )
    by_key = {row["key"]: row["prediction"] for row in predictions}
    assert sorted(by_key) == list(range(len(VALUES)))
    np.testing.assert_allclose([by_key[key] for key in range(len(VALUES))], reference_scores(VALUES), atol=1e-6)
    (letter,) = dead_letters
    assert letter["key"] == 99 and "instance" not in letter  # the key field given: the key, not the instance
    assert letter["error"]["code"] == 3  # google.rpc.Code INVALID_ARGUMENT: the record does not fit the model
    assert letter["error"]["message"].startswith("wrong_type: field 'image'")
    assert letter["error"]["message"].endswith(f"({value_columns}:22)")


def test_instance_fields_give_an_array_its_order(tmp_path, capfd, tiny_models, value_columns):
    reversed_columns = ",".join(reversed(COLUMNS))
    predictions, _ = predict(
        tmp_path,
        capfd,
        f"--input={value_columns}",
        f"--model={tiny_models['saved_model_flat']}",
        "--key_field=id",
        f"--instance_fields={reversed_columns}",
        "--instance_type=array",
    )
    ordered = sorted(predictions, key=lambda row: row["id"])
    scores = [[row[f"pred{index}"] for index in range(3)] for row in ordered]  # the 2017 sample's columns
    np.testing.assert_allclose(scores, reference_scores(VALUES[:, ::-1]), atol=1e-6)


def test_json_arrays_are_array_instances_as_they_are(tmp_path, capfd, tiny_models):
    path = tmp_path / "arrays.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in VALUES[:3].tolist()) + "[0.5, 0.25]\n")
    predictions, dead_letters = predict(
        tmp_path,
        capfd,
        f"--input={path}",
        f"--model={tiny_models['saved_model_flat']}",
        "--instance_type=array",
        "--output_shape=vertex",
    )
    assert [row["instance"] for row in predictions] == VALUES[:3].tolist()
    np.testing.assert_allclose([row["prediction"] for row in predictions], reference_scores(VALUES[:3]), atol=1e-6)
    assert dead_letters == [
        {
            "instance": [0.5, 0.25],
            "error": {
                "code": 3,
                "message": f"wrong_shape: field 'image' has shape (2,), the model takes (12,) ({path}:4)",
            },
        }
    ]


@pytest.mark.parametrize(
    ("rows", "option", "message"),
    [
        (
            [{"key": 1, "a": 1.0}],
            "--instance_type=array",
            "--instance_type=array: JSON objects need --instance_fields, the fields in the order of the array "
            "(as in Vertex AI)",
        ),
        (
            [{"key": 1, "a": 1.0, "b": 2.0}],
            "--instance_type=array --instance_fields=a,b",
            "--instance_type=array: input 'image' takes 12 values, but 2 field(s) would fill it (a, b)",
        ),
    ],
)
def test_array_instance_mistakes_are_one_line(capfd, tmp_path, tiny_models, rows, option, message):
    path = tmp_path / "objects.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = [f"--input={path}", f"--model={tiny_models['saved_model_flat']}", *option.split()]
    assert launch_error(capfd, tmp_path, *args) == message


def test_signature_name_calls_that_signature(tmp_path, capfd, two_signatures):
    path = tmp_path / "values.jsonl"
    path.write_text("".join(json.dumps({"key": key, "image": row}) + "\n" for key, row in enumerate(VALUES.tolist())))
    args = (f"--input={path}", f"--model={two_signatures}", "--output_shape=vertex", "--key_field=key")
    default, _ = predict(tmp_path / "default", capfd, *args)
    logits, _ = predict(tmp_path / "predict", capfd, *args, "--signature_name=predict")
    by_key = sorted(default, key=lambda row: row["key"])
    np.testing.assert_allclose([row["prediction"] for row in by_key], reference_scores(VALUES), atol=1e-6)
    by_key = sorted(logits, key=lambda row: row["key"])
    np.testing.assert_allclose([row["prediction"] for row in by_key], reference_logits(VALUES), atol=1e-5)


@pytest.mark.parametrize(
    ("model", "signature", "message"),
    [
        (
            "two",
            "serving_preprocessed",
            "the SavedModel {model} has no 'serving_preprocessed' signature; it has predict, serving_default",
        ),
        (
            "keras",
            "predict",
            "a Keras .keras file has only the 'serving_default' signature; other signatures are a SavedModel's",
        ),
        (
            "tf1",
            "predict",
            "a TF1 checkpoint has only the 'serving_default' signature; other signatures are a SavedModel's",
        ),
        ("two", "two words", "must be one signature's name, such as serving_default"),
    ],
)
def test_a_signature_the_model_lacks_is_one_line_naming_those_it_has(
    capfd, tmp_path, tiny_models, two_signatures, model, signature, message
):
    path = {"two": two_signatures, "keras": tiny_models["keras"], "tf1": tiny_models["tf1"]}[model]
    data = tmp_path / "values.jsonl"
    data.write_text(json.dumps({"key": 1, "image": VALUES[0].tolist()}) + "\n")
    error = launch_error(capfd, tmp_path, f"--input={data}", f"--model={path}", f"--signature_name={signature}")
    assert error == f"--signature_name={signature}: " + message.format(model=path)


def test_an_unknown_flag_is_one_line_with_the_nearest_name_and_beam_options_pass(capfd, tmp_path, tiny_models):
    data = tmp_path / "values.jsonl"
    data.write_text(json.dumps({"key": 1, "image": VALUES[0].tolist()}) + "\n")
    model = tiny_models["saved_model_flat"]
    error = launch_error(capfd, tmp_path, f"--input={data}", f"--model={model}", "--signature_nme=predict")
    assert (
        error
        == "unknown parameter --signature_nme: neither the template nor Beam has it; did you mean --signature_name?"
    )
    error = launch_error(capfd, tmp_path, f"--input={data}", f"--model={model}", "--temp-location=/tmp")
    assert error == "unknown parameter --temp-location; did you mean --temp_location?"
    beam_options = ("--experiments=use_runner_v2", "--num_workers=2", "--labels=team=ml", f"--temp_location={tmp_path}")
    predictions, _ = predict(tmp_path, capfd, f"--input={data}", f"--model={model}", *beam_options)
    assert len(predictions) == 1


def test_the_console_pickers_give_input_and_output(tmp_path, capfd, tiny_models):
    data = tmp_path / "values.jsonl"
    data.write_text(json.dumps({"key": 1, "image": VALUES[0].tolist()}) + "\n")
    output = tmp_path / "picked" / "p"
    status = run([f"--input_files={data}", f"--model={tiny_models['saved_model_flat']}", f"--output_files={output}"])
    assert status == 0, capfd.readouterr().err
    predictions, _ = predictions_and_dead_letters(output)
    assert [row["key"] for row in predictions] == [1]
    capfd.readouterr()
    assert run([f"--input={data}", f"--input_files={tmp_path}/other.jsonl", "--model=m", f"--output={output}"]) == 2
    assert capfd.readouterr().err.strip() == "error: --input, --input_files name different places; give one of them"
