"""`--output_shape=vertex` against what Vertex AI batch prediction documents it writes, case by case, from
the guide "Get batch predictions from a custom trained model" (its input and output examples) and the
BatchPredictionJob reference (InstanceConfig, OutputConfig): JSON Lines files, then BigQuery (emulator).

Each run is the template itself (`main.run`, DirectRunner) with real TensorFlow models.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest

from main import run
from tests.conftest import ROOT, SAMPLES
from tests.damage import damaged
from tests.model_factories import WIDTH, failing_saved_model, serialized_example
from tests.outputs import predictions_and_dead_letters, read_json_lines

pytestmark = pytest.mark.slow

PNG = SAMPLES / "png"
PENGUINS = SAMPLES / "penguins"
KERNEL = np.array([[0.5, -0.5], [0.25, 0.0], [-1.0, 1.0], [0.0, 0.125]], dtype=np.float32)


def values_model(path: Path, with_key: bool) -> Path:
    """The guide's model: `values` (4 floats) in, `scores` (2 classes) out; `with_key`, also an int64 `key`
    input echoed as an output, as Example 2's instances carry a key the model takes."""
    import tensorflow as tf

    module = tf.Module()
    spec = [tf.TensorSpec([None, 4], tf.float32, name="values")]
    if with_key:
        spec.append(tf.TensorSpec([None], tf.int64, name="key"))

    @tf.function(input_signature=spec)
    def serve(values, *key):
        scores = {"scores": tf.nn.softmax(tf.matmul(values, tf.constant(KERNEL)))}
        return {**scores, "key": key[0]} if key else scores

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def scores(values: list[list[float]]) -> np.ndarray:
    logits = np.array(values, dtype=np.float32) @ KERNEL
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("vertex-models")
    return {
        "values": values_model(folder / "values", with_key=False),
        "keyed": values_model(folder / "keyed", with_key=True),
        "failing": failing_saved_model(folder / "failing"),
    }


def predict(tmp_path: Path, capfd, *args: str) -> tuple[list[dict], list[dict]]:
    output = tmp_path / "out" / "p"
    status = run([*args, f"--output={output}", "--output_shape=vertex"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    return predictions_and_dead_letters(output)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ------------------------------------------------------------------ the guide's JSON Lines examples


def test_example_1_array_lines_are_written_back_as_the_array_instances_they_are(tmp_path, capfd, models):
    """Example 1: `[1, 2, 3, 4]` lines; output `{"instance": [1, 2, 3, 4], "prediction": [...]}`. Vertex AI's
    default for JSON Lines is each line's own form: no --instance_type needed."""
    source = write(tmp_path / "arrays.jsonl", "[1, 2, 3, 4]\n[5, 6, 7, 8]\n")
    predictions, dead_letters = predict(tmp_path, capfd, f"--input={source}", f"--model={models['values']}")
    by_instance = sorted(predictions, key=lambda row: row["instance"])
    assert [row["instance"] for row in by_instance] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert all(set(row) == {"instance", "prediction"} for row in predictions) and not dead_letters
    np.testing.assert_allclose(
        [row["prediction"] for row in by_instance], scores([[1, 2, 3, 4], [5, 6, 7, 8]]), atol=1e-6
    )


def test_example_2_object_lines_are_the_object_sent_unless_the_key_field_is_given(tmp_path, capfd, models):
    """Example 2: `{"values": [1, 2, 3, 4], "key": 1}` sent whole (the model takes both); output
    `{"instance": {"values": [...], "key": 1}, "prediction": {...}}`. With keyField `key`: `{"key": 1, ...}`."""
    lines = '{ "values": [1, 2, 3, 4], "key": 1 }\n{ "values": [5, 6, 7, 8], "key": 2 }\n'
    source = write(tmp_path / "objects.jsonl", lines)
    args = (f"--input={source}", f"--model={models['keyed']}")
    predictions, _ = predict(tmp_path / "unkeyed", capfd, *args)
    first = min(predictions, key=lambda row: row["instance"]["key"])
    assert first["instance"] == {"values": [1, 2, 3, 4], "key": 1}
    assert first["prediction"]["key"] == 1  # the model's own echo, as TensorFlow Serving returns it
    np.testing.assert_allclose(first["prediction"]["scores"], scores([[1, 2, 3, 4]])[0], atol=1e-6)
    keyed, _ = predict(tmp_path / "keyed", capfd, *args, "--key_field=key")
    assert sorted((row["key"], set(row)) for row in keyed) == [
        (1, {"key", "prediction"}),
        (2, {"key", "prediction"}),
    ]


def test_a_json_lines_file_mixing_arrays_and_objects_keeps_each_lines_form(tmp_path, capfd, models):
    source = write(tmp_path / "mixed.jsonl", '[1, 2, 3, 4]\n{"values": [5, 6, 7, 8]}\n')
    predictions, _ = predict(tmp_path, capfd, f"--input={source}", f"--model={models['values']}")
    assert sorted(json.dumps(row["instance"]) for row in predictions) == ["[1, 2, 3, 4]", '{"values": [5, 6, 7, 8]}']


def test_the_instance_is_the_record_as_sent_so_predictions_join_back_on_it(tmp_path, capfd, models):
    """The instance is "sent to the Model" (InstanceConfig), so a reader joins predictions to records on it:
    the numbers as written (not as float32 holds them) and every field sent, the model's or not."""
    lines = '[1.23456789, 16777217, 3, 4]\n{"values": [0.3333333333333333, 2, 3, 4], "id": 12}\n'
    source = write(tmp_path / "in.jsonl", lines)
    predictions, _ = predict(tmp_path, capfd, f"--input={source}", f"--model={models['values']}")
    written = sorted(json.dumps(row["instance"]) for row in predictions)
    assert written == ["[1.23456789, 16777217, 3, 4]", '{"values": [0.3333333333333333, 2, 3, 4], "id": 12}']
    csv_source = write(tmp_path / "in.csv", "a,b,c,d\n1.23456789,16777217,3,4\n")
    (row,), _ = predict(tmp_path / "csv", capfd, f"--input={csv_source}", f"--model={models['values']}")
    assert json.dumps(row["instance"]) == "[1.23456789, 16777217, 3, 4]"


def test_the_docs_example_line_is_the_line_the_template_writes(tmp_path, capfd):
    """docs/vertex-ai.md's example: penguins sent as a Vertex AI user sends them to a model that does not take
    the key (--excluded_fields=key,species): the instance is the record as read, the excluded fields attached."""
    doc = (ROOT / "docs" / "vertex-ai.md").read_text()
    (example,) = [block for block in doc.split("```json\n")[1:] if '"key":0' in block]
    documented = example.split("\n```")[0].strip()
    output = tmp_path / "p"
    args = [f"--input={PENGUINS / 'penguins.jsonl'}", f"--model={PENGUINS / 'model'}", f"--output={output}"]
    assert run([*args, "--output_shape=vertex", "--excluded_fields=key,species"]) == 0, capfd.readouterr().err
    (written,) = [row for row in read_json_lines(tmp_path / "p-*.jsonl") if row["key"] == 0]
    expected = json.loads(documented)
    assert list(written) == list(expected)  # instance, prediction, then the attached key and species
    assert json.dumps(written["instance"]) == json.dumps(expected["instance"])  # 181 as read, not 181.0 as fed
    assert (written["key"], written["species"]) == (expected["key"], expected["species"])
    assert written["prediction"]["species"] == expected["prediction"]["species"]
    np.testing.assert_allclose(written["prediction"]["probabilities"], expected["prediction"]["probabilities"])


# ------------------------------------------------------------------ CSV, TFRecord, file lists


def test_csv_rows_are_arrays_by_default_in_the_headers_order_and_a_key_field_given_replaces_them(
    tmp_path, capfd, models
):
    """Vertex AI: for csv "the behavior is the same as array", columns in the file's order; keyField (which
    applies to CSV) writes `key` instead."""
    source = write(tmp_path / "rows.csv", "a,b,c,d\n1,2,3,4\n5,6,7,8\n1,2,x,4\n")
    predictions, dead_letters = predict(tmp_path / "plain", capfd, f"--input={source}", f"--model={models['values']}")
    assert sorted(row["instance"] for row in predictions) == [[1, 2, 3, 4], [5, 6, 7, 8]]
    (letter,) = dead_letters
    assert letter["instance"] == [1, 2, "x", 4]  # the array it would have sent
    assert letter["error"]["code"] == 3 and letter["error"]["message"].startswith("wrong_type: ")
    keyed_source = write(tmp_path / "keyed.csv", "id,a,b,c,d\n7,1,2,3,4\n")
    keyed, _ = predict(
        tmp_path / "keyed", capfd, f"--input={keyed_source}", f"--model={models['values']}", "--key_field=id"
    )
    assert [set(row) for row in keyed] == [{"key", "prediction"}] and keyed[0]["key"] == 7


def test_tfrecord_instances_are_b64_objects_of_the_record(tmp_path, capfd, format_models):
    """InstanceConfig: each TFRecord record "will be converted to an object in the format of {"b64": <value>}"."""
    import tensorflow as tf

    records = [serialized_example([1.0, 2.0]), serialized_example([3.0, 4.5])]
    path = tmp_path / "in.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    predictions, _ = predict(tmp_path, capfd, f"--input={path}", f"--model={format_models['examples']}")
    by_total = sorted(predictions, key=lambda row: row["prediction"])
    assert [row["instance"] for row in by_total] == [{"b64": base64.b64encode(record).decode()} for record in records]
    assert [row["prediction"] for row in by_total] == [3.0, 7.5]


def examples_and_key_model(path: Path) -> Path:
    """An Estimator's (or TFX's) serving signature: serialized Examples and an int64 `key`, echoed back."""
    import tensorflow as tf

    module = tf.Module()

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples"), tf.TensorSpec([None], tf.int64, name="key")]
    )
    def serve(examples, key):
        parsed = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([2], tf.float32)})
        return {"total": tf.reduce_sum(parsed["x"], axis=1), "key": key}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


def test_tfrecord_instances_are_the_records_also_for_a_model_that_takes_a_key_beside_them(tmp_path, capfd):
    """The job wrote no line for such a model (the instance was looked up among the inputs, which held two)."""
    import tensorflow as tf

    records = [serialized_example([1.0, 2.0], key=7), serialized_example([3.0, 4.0], key=8)]
    path = tmp_path / "in.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    model = examples_and_key_model(tmp_path / "model")
    predictions, dead_letters = predict(tmp_path / "unkeyed", capfd, f"--input={path}", f"--model={model}")
    assert not dead_letters
    by_key = sorted(predictions, key=lambda row: row["prediction"]["key"])
    assert [row["instance"] for row in by_key] == [{"b64": base64.b64encode(record).decode()} for record in records]
    assert [row["prediction"] for row in by_key] == [{"total": 3.0, "key": 7}, {"total": 7.0, "key": 8}]
    keyed, _ = predict(tmp_path / "keyed", capfd, f"--input={path}", f"--model={model}", "--key_field=key")
    assert sorted((row["key"], set(row)) for row in keyed) == [(7, {"key", "prediction"}), (8, {"key", "prediction"})]


def test_a_file_lists_instance_is_the_files_uri_so_predictions_join_back_to_their_files(tmp_path, capfd):
    """The guide: for a file list the instance "contains the Cloud Storage URI" (the bytes go to the model)."""
    pattern = f"{PNG / 'digits'}/800[0-4].png"
    predictions, _ = predict(tmp_path, capfd, f"--input={pattern}", f"--model={PNG / 'model'}", "--format=files")
    assert sorted(row["instance"] for row in predictions) == [str(PNG / "digits" / f"800{i}.png") for i in range(5)]
    labels = dict(line.split(",") for line in (PNG / "labels.csv").read_text().split())
    for row in predictions:
        key = Path(row["instance"]).stem
        assert int(np.argmax(row["prediction"])) == int(labels[key])


# ------------------------------------------------------------------ errors: codes by kind, the two forms


def test_the_error_code_says_the_kind_of_failure_in_either_documented_form(tmp_path, capfd, models):
    """A record that does not fit: INVALID_ARGUMENT (3); the model failing on one: the code its error carries
    (TensorFlow's InvalidArgumentError is 3, as TensorFlow Serving answers), INTERNAL (13) where it carries
    none. --vertex_error=status writes PredictionResult's form, the Code's name."""
    rows = [{"image": [0.5] * WIDTH}, {"image": [500.0] * WIDTH}, {"image": [0.5] * 3}]
    source = write(tmp_path / "in.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    args = (f"--input={source}", f"--model={models['failing']}", "--batch_size=1")
    predictions, dead_letters = predict(tmp_path / "code", capfd, *args)
    assert len(predictions) == 1
    codes = sorted((letter["error"]["code"], letter["error"]["message"].split(":")[0]) for letter in dead_letters)
    assert codes == [(3, "inference_failed"), (3, "wrong_shape")]
    _, named = predict(tmp_path / "status", capfd, *args, "--vertex_error=status")
    assert [letter["error"]["status"] for letter in named] == ["INVALID_ARGUMENT", "INVALID_ARGUMENT"]
    assert all(set(letter["error"]) == {"status", "message"} for letter in named)


def test_damaged_input_is_data_loss(tmp_path, capfd, models):
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(damaged("truncated", "".join("[1, 2, 3, 4]\n" for _ in range(2000)).encode()))
    _, dead_letters = predict(tmp_path, capfd, f"--input={source}", f"--model={models['values']}")
    assert {letter["error"]["code"] for letter in dead_letters} == {15}  # google.rpc.Code DATA_LOSS


# ------------------------------------------------------------------ Vertex AI's file names


def test_vertex_ais_folder_and_file_names_are_two_parameters_away(tmp_path, capfd, models):
    """Vertex AI writes `prediction-<model>-<time>/prediction.results-00000-of-00001`: --output and --dead_letter
    name them (the `.jsonl` suffix aside), so a reader globbing `prediction.results-*` finds them."""
    folder = tmp_path / "prediction-values-2025-01-01T00:00:00.000Z"
    source = write(tmp_path / "in.jsonl", "[1, 2, 3, 4]\n[1, 2]\n")
    status = run(
        [
            f"--input={source}",
            f"--model={models['values']}",
            "--output_shape=vertex",
            f"--output={folder / 'prediction.results'}",
            f"--dead_letter={folder / 'prediction.errors_stats'}",
        ]
    )
    assert status == 0, capfd.readouterr().err[-2000:]
    assert sorted(path.name for path in folder.iterdir()) == [
        "batch_prediction-report.html",  # the run's statistics, named out of the way of Vertex's globs
        "batch_prediction-stats.json",
        "prediction.errors_stats-00000-of-00001.jsonl",
        "prediction.results-00000-of-00001.jsonl",
    ]
    assert [row["instance"] for row in read_json_lines(folder / "prediction.results-*")] == [[1, 2, 3, 4]]


# ------------------------------------------------------------------ BigQuery (emulator)


@pytest.fixture(scope="module")
def bq(cloud_emulators):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("vertex", exists_ok=True)
    return client


def table_columns(bq, project: str, table: str) -> list[tuple]:
    schema = bq.get_table(f"{project}.vertex.{table}").schema
    return [(field.name, field.field_type, [(sub.name, sub.field_type) for sub in field.fields]) for field in schema]


def table_rows(bq, sql: str) -> list[dict]:
    return [dict(row.items()) for row in bq.query(sql).result()]


@pytest.mark.emulators
def test_a_table_of_columns_is_an_array_instance_and_its_columns_come_back_in_vertex_ais_tables(
    cloud_emulators, bq, capfd, models
):
    """BigQuery in and out: Vertex AI's default array of a table's columns; its predictions table (the
    instance's columns, then `prediction`) and errors table (the columns, then `errors` STRUCT<code, message>);
    an existing table refused at launch unless --existing_tables=replace."""
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        schema=[bigquery.SchemaField(name, "FLOAT") for name in "abcd"],
        write_disposition="WRITE_TRUNCATE",
    )
    data = b"1,2,3,4\n5,6,7,8\n1,2,,4\n"  # the third row has a NULL where the array needs a number
    bq.load_table_from_file(io.BytesIO(data), "vertex.values", job_config=config).result()
    args = [
        "--source=bigquery",
        "--input=vertex.values",
        f"--model={models['values']}",
        "--sink=bigquery",
        "--output=vertex.predictions",
        "--dead_letter=vertex.errors",
        "--output_shape=vertex",
        *cloud_emulators.beam_options(),
    ]
    assert run(args) == 0, capfd.readouterr().err[-3000:]
    project = cloud_emulators.project
    float_columns = [(name, "FLOAT", []) for name in "abcd"]
    assert table_columns(bq, project, "predictions") == [*float_columns, ("prediction", "STRING", [])]
    errors_struct = ("errors", "RECORD", [("code", "INTEGER"), ("message", "STRING")])
    assert table_columns(bq, project, "errors") == [*float_columns, errors_struct]
    predicted = table_rows(bq, "SELECT a, b, c, d, prediction FROM vertex.predictions ORDER BY a")
    assert [[row[name] for name in "abcd"] for row in predicted] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    np.testing.assert_allclose(
        [json.loads(row["prediction"]) for row in predicted], scores([[1, 2, 3, 4], [5, 6, 7, 8]]), atol=1e-6
    )
    (error,) = table_rows(bq, "SELECT a, c, errors.code AS code, errors.message AS message FROM vertex.errors")
    assert (error["a"], error["c"], error["code"]) == (1.0, None, 3)
    capfd.readouterr()
    assert run(args) == 2  # Vertex AI writes new tables only
    assert capfd.readouterr().err.strip() == (
        "error: --output=vertex.predictions: the table exists; Vertex AI writes new tables only (give a new "
        "table, or --existing_tables=replace to replace its rows)"
    )
    assert run([*args, "--existing_tables=replace"]) == 0
    assert table_rows(bq, "SELECT COUNT(*) AS n FROM vertex.predictions") == [{"n": 2}]


@pytest.mark.emulators
def test_a_key_field_given_is_the_key_column_in_place_of_the_instance_columns(cloud_emulators, bq, capfd):
    """keyField: "the output will have a `key` column instead of the instance feature columns"; the errors
    table too. The penguins model takes named inputs: --instance_type=object (Vertex AI: for a model that
    takes objects, such as a BigQuery ML model)."""
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        autodetect=False,
        write_disposition="WRITE_TRUNCATE",
    )
    names = ["key", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "species"]
    kinds = ["INTEGER", "STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "STRING"]
    config.schema = [bigquery.SchemaField(name, kind) for name, kind in zip(names, kinds, strict=True)]
    lines = (PENGUINS / "penguins.csv").read_text().splitlines()
    data = "\n".join([*lines[:6], "999,Dream,,17.0,190,3500,male,Adelie"]) + "\n"
    bq.load_table_from_file(io.BytesIO(data.encode()), "vertex.penguins", job_config=config).result()
    args = [
        "--source=bigquery",
        "--input=vertex.penguins",
        f"--model={PENGUINS / 'model'}",
        "--sink=bigquery",
        "--output=vertex.penguin_predictions",
        "--dead_letter=vertex.penguin_errors",
        "--output_shape=vertex",
        "--instance_type=object",
        "--key_field=key",
        *cloud_emulators.beam_options(),
    ]
    assert run(args) == 0, capfd.readouterr().err[-3000:]
    project = cloud_emulators.project
    assert table_columns(bq, project, "penguin_predictions") == [("key", "INTEGER", []), ("prediction", "STRING", [])]
    assert [column[0] for column in table_columns(bq, project, "penguin_errors")] == ["key", "errors"]
    predicted = table_rows(bq, "SELECT key, prediction FROM vertex.penguin_predictions ORDER BY key")
    assert [row["key"] for row in predicted] == [int(line.split(",")[0]) for line in lines[1:6]]
    assert json.loads(predicted[0]["prediction"])["species"] == "Adelie"
    (error,) = table_rows(bq, "SELECT key, errors.code AS code, errors.message AS message FROM vertex.penguin_errors")
    assert (error["key"], error["code"]) == (999, 3)
    assert error["message"] == "missing_field: field 'bill_length_mm' is null (key=999)"


@pytest.mark.emulators
def test_a_tables_columns_keep_their_types_and_the_attached_fields_follow_predictions_and_errors(
    cloud_emulators, bq, capfd, models
):
    """An INTEGER column fed to a float input stays INTEGER in Vertex AI's tables (the instance as sent, not as
    fed); excluded fields are attached after `prediction`, and after `errors` in the errors table."""
    from google.cloud import bigquery

    names, kinds = ["id", "a", "b", "c", "d", "note"], ["INTEGER", "INTEGER", "FLOAT", "FLOAT", "FLOAT", "STRING"]
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        schema=[bigquery.SchemaField(name, kind) for name, kind in zip(names, kinds, strict=True)],
        write_disposition="WRITE_TRUNCATE",
    )
    data = b"9007199254740993,16777217,2,3,4,first\n2,5,6,,8,second\n"  # the second row's NULL: a dead letter
    bq.load_table_from_file(io.BytesIO(data), "vertex.typed", job_config=config).result()
    args = [
        "--source=bigquery",
        "--input=vertex.typed",
        f"--model={models['values']}",
        "--sink=bigquery",
        "--output=vertex.typed_predictions",
        "--dead_letter=vertex.typed_errors",
        "--output_shape=vertex",
        "--excluded_fields=id,note",
        *cloud_emulators.beam_options(),
    ]
    assert run(args) == 0, capfd.readouterr().err[-3000:]
    project = cloud_emulators.project
    instance = [("a", "INTEGER", []), *((name, "FLOAT", []) for name in "bcd")]
    attached = [("id", "INTEGER", []), ("note", "STRING", [])]
    assert table_columns(bq, project, "typed_predictions") == [*instance, ("prediction", "STRING", []), *attached]
    errors_struct = ("errors", "RECORD", [("code", "INTEGER"), ("message", "STRING")])
    assert table_columns(bq, project, "typed_errors") == [*instance, errors_struct, *attached]
    (predicted,) = table_rows(bq, "SELECT a, b, id, note FROM vertex.typed_predictions")
    assert predicted == {"a": 16777217, "b": 2.0, "id": 9007199254740993, "note": "first"}
    (error,) = table_rows(bq, "SELECT a, c, id, note, errors.code AS code FROM vertex.typed_errors")
    assert error == {"a": 5, "c": None, "id": 2, "note": "second", "code": 3}
