"""Every source with every sink, end to end, on local GCS and BigQuery emulators.

The template runs unchanged (`main.run`, in this process, DirectRunner) against real servers:
gcp-storage-emulator for gs:// and bqemulator for BigQuery, started by tests/emulators.py,
which points the real client libraries at them. Nothing here mocks a client.
"""

from __future__ import annotations

import dataclasses
import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from main import run
from pipeline.job.sources import ReadFileRecords
from tests.conftest import SAMPLE_IMAGES, SAMPLE_MODEL, SAMPLES
from tests.damage import damaged
from tests.emulators import CloudEmulators
from tests.outputs import read_json_lines

pytestmark = pytest.mark.emulators

DATASET = "mnist"
N_IMAGES = 10_000
PREDICTION_COLUMNS = ["key", "prediction", "confidence"] + [f"pred{index}" for index in range(10)]
# The 2017 sample's two queries, verbatim.
SEED_QUERY_FIRST_KEYS = "SELECT * FROM mnist.predict WHERE key < 10 ORDER BY key;"
SEED_QUERY_CONFIDENT_ZEROS = "SELECT COUNT(*) FROM mnist.predict WHERE pred0 >= 0.9;"


@pytest.fixture(scope="module")
def emu(cloud_emulators: CloudEmulators) -> CloudEmulators:
    return cloud_emulators


@pytest.fixture(scope="module")
def bq(emu):
    from google.cloud import bigquery

    client = bigquery.Client()  # BIGQUERY_EMULATOR_HOST and anonymous credentials come from the fixture
    client.create_dataset(DATASET, exists_ok=True)
    return client


def scalar(bq, sql: str):
    return next(iter(bq.query(sql).result()))[0]


def rows(bq, sql: str) -> list[dict]:
    return [dict(row.items()) for row in bq.query(sql).result()]


@pytest.fixture(scope="module")
def images_uri(emu) -> str:
    emu.gcs.client().bucket(emu.bucket).blob("mnist/images.txt.gz").upload_from_filename(str(SAMPLE_IMAGES))
    return f"gs://{emu.bucket}/mnist/images.txt.gz"


@pytest.fixture(scope="module")
def model_uri(emu) -> str:
    for path in SAMPLE_MODEL.rglob("*"):
        if path.is_file():
            with FileSystems.create(f"gs://{emu.bucket}/mnist/model/{path.relative_to(SAMPLE_MODEL)}") as handle:
                handle.write(path.read_bytes())
    return f"gs://{emu.bucket}/mnist/model"


@pytest.fixture(scope="module")
def images_table(emu, bq, images_uri) -> str:
    """mnist.images, loaded as the seed's `bq load --source_format=CSV -F":" mnist.images images.txt.gz
    "key:integer,image:string"` does: a CSV load job, field delimiter ':', from the gzipped file on gs://.
    (bqemulator 1.4.0 ignores fieldDelimiter; tests/emulators.py makes its CSV loads honour it.)"""
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        field_delimiter=":",
        schema=[bigquery.SchemaField("key", "INTEGER"), bigquery.SchemaField("image", "STRING")],
        write_disposition="WRITE_TRUNCATE",
    )
    job = bq.load_table_from_uri(images_uri, f"{DATASET}.images", job_config=config)
    job.result()
    assert job.output_rows == N_IMAGES
    return f"{emu.project}:{DATASET}.images"


@pytest.fixture(scope="module")
def direct_scores(sample_scores) -> np.ndarray:
    return sample_scores


def launch(emu, *args: str) -> None:
    assert run([*args, *emu.beam_options()]) == 0


def assert_matches_direct(predictions: list[dict], direct_scores: np.ndarray) -> None:
    keys = [row["key"] for row in predictions]
    assert sorted(keys) == sorted(set(keys)), "duplicate keys"
    scores = np.array([[row[f"pred{index}"] for index in range(10)] for row in predictions])
    np.testing.assert_allclose(scores, direct_scores[keys], atol=1e-5)
    assert [row["prediction"] for row in predictions] == direct_scores[keys].argmax(axis=1).tolist()
    np.testing.assert_allclose([row["confidence"] for row in predictions], direct_scores[keys].max(axis=1), atol=1e-5)


def test_text_on_gcs_to_bigquery_answers_the_seed_queries_and_truncates(emu, bq, images_uri, direct_scores):
    for _ in range(2):  # the second run must replace the first run's rows, not add to them
        launch(
            emu, f"--input={images_uri}", "--sink=bigquery", f"--output={DATASET}.predict", f"--model={SAMPLE_MODEL}"
        )
        assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.predict") == N_IMAGES

    table = bq.get_table(f"{emu.project}.{DATASET}.predict")
    assert [(field.name, field.field_type) for field in table.schema] == [
        ("key", "INTEGER"),
        ("prediction", "INTEGER"),
        ("confidence", "FLOAT"),
        *[(f"pred{index}", "FLOAT") for index in range(10)],
    ]
    assert_matches_direct(rows(bq, f"SELECT * FROM {DATASET}.predict"), direct_scores)

    first_keys = rows(bq, SEED_QUERY_FIRST_KEYS)
    assert [row["key"] for row in first_keys] == list(range(10))
    assert list(first_keys[0]) == PREDICTION_COLUMNS
    assert_matches_direct(first_keys, direct_scores)
    assert scalar(bq, SEED_QUERY_CONFIDENT_ZEROS) == int((direct_scores[:, 0] >= 0.9).sum())


def test_bigquery_table_to_text(emu, images_table, direct_scores, tmp_path):
    launch(
        emu,
        "--source=bq",
        f"--input={images_table}",
        "--sink=text",
        f"--output={tmp_path / 'p'}",
        f"--model={SAMPLE_MODEL}",
    )
    predictions = read_json_lines(tmp_path / "p-*.jsonl")
    assert len(predictions) == N_IMAGES
    assert_matches_direct(predictions, direct_scores)
    assert [path.read_text() for path in tmp_path.glob("p_error_records-*.jsonl")] == [""]


def test_bigquery_query_to_text(emu, images_table, direct_scores, tmp_path):
    launch(
        emu,
        "--source=bigquery",
        f"--query=SELECT key, image FROM {DATASET}.images WHERE key < 100",
        "--sink=text",
        f"--output={tmp_path / 'p'}",
        f"--model={SAMPLE_MODEL}",
    )
    predictions = read_json_lines(tmp_path / "p-*.jsonl")
    assert sorted(row["key"] for row in predictions) == list(range(100))
    assert_matches_direct(predictions, direct_scores)


def test_bigquery_to_bigquery_sends_bad_rows_to_the_error_table(emu, bq, images_table, direct_scores):
    bq.query(
        f"CREATE OR REPLACE TABLE {DATASET}.mixed AS "
        f"SELECT key, image FROM {DATASET}.images WHERE key < 50 "
        "UNION ALL SELECT 100001, NULL "
        "UNION ALL SELECT NULL, '0.5,0.5' "
        "UNION ALL SELECT 100002, CONCAT(REPEAT('0,', 783), 'x') "
        "UNION ALL SELECT 100003, '1,2,3'"
    ).result()
    for _ in range(2):
        launch(
            emu,
            "--source=bigquery",
            f"--input={DATASET}.mixed",
            f"--output={DATASET}.mixed_predict",
            f"--model={SAMPLE_MODEL}",
        )
    assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.mixed_predict") == 50
    assert_matches_direct(rows(bq, f"SELECT * FROM {DATASET}.mixed_predict"), direct_scores)

    errors = rows(bq, f"SELECT * FROM {DATASET}.mixed_predict_error_records ORDER BY reason, errorMessage")
    assert [(row["reason"], row["errorMessage"]) for row in errors] == [
        ("non_numeric_value", "value 783 ('x') is not a number"),
        ("null_field", "image is NULL"),
        ("null_field", "key is NULL"),
        ("wrong_value_count", "expected 784 values, got 3"),
    ]
    assert {row["origin"] for row in errors} == {f"{DATASET}.mixed"}
    assert [row["position"] for row in errors] == ["key=100002", "key=100001", None, "key=100003"]
    assert all(row["timestamp"] is not None and row["payloadBytes"] for row in errors)
    error_schema = {
        field.name: field.field_type
        for field in bq.get_table(f"{emu.project}.{DATASET}.mixed_predict_error_records").schema
    }
    assert error_schema == {
        "timestamp": "TIMESTAMP",
        "origin": "STRING",
        "position": "STRING",
        "reason": "STRING",
        "errorMessage": "STRING",
        "payloadString": "STRING",
        "payloadBytes": "BYTES",
        "stacktrace": "STRING",
    }


def test_a_rerun_replaces_both_tables_even_when_it_has_nothing_to_add_to_one(emu, bq, images_table, capfd):
    """Dead letters in the first run, none in the second: the error table must not keep old rows."""
    bq.query(
        f"CREATE OR REPLACE TABLE {DATASET}.rerun_input AS SELECT key, image FROM {DATASET}.images WHERE key < 5 "
        "UNION ALL SELECT 7777, NULL"
    ).result()
    args = [
        "--source=bigquery",
        f"--input={DATASET}.rerun_input",
        f"--output={DATASET}.rerun",
        f"--model={SAMPLE_MODEL}",
    ]
    launch(emu, *args)
    assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.rerun_error_records") == 1
    bq.query(f"DELETE FROM {DATASET}.rerun_input WHERE image IS NULL").result()
    capfd.readouterr()
    launch(emu, *args)
    assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.rerun") == 5
    assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.rerun_error_records") == 0  # emptied after the run succeeded
    assert "  earlier output       1 table(s) that got no rows emptied" in capfd.readouterr().out


def test_a_run_that_fails_after_launch_leaves_both_tables_as_they_were(emu, bq, tmp_path, capfd):
    """Run 2 has a model of the same signature that refuses every record: the job stops as broken, exit 1,
    after its launch. Nothing was emptied at launch, and no load ran: both tables hold run 1's rows."""
    from tests.model_factories import WIDTH, failing_saved_model

    values = np.random.default_rng(3).random((150, WIDTH), dtype=np.float32)
    source = tmp_path / "in.txt"
    lines = [f"{key}:" + ",".join(map(str, row)) for key, row in enumerate(values)]
    source.write_text("\n".join([*lines, "150:1,2,3"]) + "\n")  # one dead letter: too few values
    args = [f"--input={source}", "--sink=bigquery", f"--output={DATASET}.survives"]
    launch(emu, *args, f"--model={failing_saved_model(tmp_path / 'good', limit=100.0)}")
    tables = (f"{DATASET}.survives", f"{DATASET}.survives_error_records")
    earlier = [sorted(rows(bq, f"SELECT * FROM {table}"), key=str) for table in tables]
    assert [len(table_rows) for table_rows in earlier] == [150, 1]
    capfd.readouterr()

    broken = failing_saved_model(tmp_path / "broken", limit=-1.0)  # refuses every value
    assert run([*args, f"--model={broken}", *emu.beam_options()]) == 1
    assert "it is broken for this input, so the job stops" in capfd.readouterr().err
    assert [sorted(rows(bq, f"SELECT * FROM {table}"), key=str) for table in tables] == earlier


def test_a_table_read_that_comes_up_short_is_a_dead_letter(emu, bq, images_table, monkeypatch, tmp_path, capfd):
    """As if a read stream ended early: the launch counted more rows than the job reads."""
    from pipeline.launch import table_checks, validation

    def counted_more(spec, project):
        info = table_checks.describe_table(spec, project)
        return dataclasses.replace(info, rows=info.rows + 3)

    monkeypatch.setattr(validation, "describe_table", counted_more)
    output = tmp_path / "p"
    launch(
        emu, "--source=bq", f"--input={images_table}", "--sink=text", f"--output={output}", f"--model={SAMPLE_MODEL}"
    )
    dead_letters = read_json_lines(tmp_path / "p_error_records-*.jsonl")
    assert [(row["origin"], row["reason"]) for row in dead_letters] == [(images_table, "incomplete_read")]
    assert dead_letters[0]["errorMessage"].startswith(f"read {N_IMAGES:,} rows of the {N_IMAGES + 3:,} the table held")
    summary = capfd.readouterr().out
    assert "WARNING: damaged input (incomplete_read)" in summary and "records read != predictions" not in summary


def test_gcs_to_gcs_with_the_model_on_gcs(emu, images_uri, model_uri, direct_scores):
    output = f"gs://{emu.bucket}/mnist/out/predictions"
    launch(emu, f"--input={images_uri}", f"--output={output}", f"--model={model_uri}")
    predictions = read_json_lines(output + "-*.jsonl")
    assert len(predictions) == N_IMAGES
    assert_matches_direct(predictions, direct_scores)
    assert read_json_lines(output + "_error_records-*.jsonl") == []
    leftovers = [
        blob.name for blob in emu.gcs.client().list_blobs(emu.bucket, prefix="mnist/out/") if "beam-temp" in blob.name
    ]
    assert leftovers == []


def test_an_uncompressed_file_on_gcs_is_read_in_ranges_each_line_once(emu, sample_lines):
    """Ranges seek into a gs:// object (Beam's GCS reader) and read on past their stop to finish a line."""
    data = b"\r\n".join(sample_lines[:300]) + b"\r\n"
    emu.gcs.client().bucket(emu.bucket).blob("ranges/images.txt").upload_from_string(data)
    uri = f"gs://{emu.bucket}/ranges/images.txt"
    starts = [0]
    for line in sample_lines[:299]:
        starts.append(starts[-1] + len(line) + 2)
    range_bytes = 100_000  # ~21 lines a range; every line of a file of several ranges is located by its bytes
    expected = [(f"{uri}@{start}", line + b"\r") for start, line in zip(starts, sample_lines[:300], strict=True)]
    with beam.Pipeline(options=PipelineOptions(emu.beam_options())) as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(uri, "key_values", 64, range_bytes=range_bytes)
        records = batches | beam.FlatMap(
            lambda batch: [(batch.position_of(index), payload) for index, payload in enumerate(batch.payloads)]
        )
        assert_that(records, equal_to(expected))
        assert_that(dead_letters, equal_to([]), label="no dead letters")


def test_damaged_files_on_gcs_become_dead_letters_and_the_others_are_predicted(emu, sample_lines, capfd):
    """A truncated gzip, one whose CRC does not match, and one that is not gzip, among good files on gs://."""
    chunks = [b"\n".join(sample_lines[i * 1000 : (i + 1) * 1000]) + b"\n" for i in range(4)]
    files = {
        "a-good.txt.gz": damaged("whole", chunks[0]),
        "b-truncated.txt.gz": damaged("truncated", chunks[1]),
        "c-wrong-crc.txt.gz": damaged("wrong-crc", chunks[2]),
        "d-not-gzip.txt.gz": damaged("not-gzip", b""),
        "e-good.txt.gz": damaged("whole", chunks[3]),
    }
    for name, data in files.items():
        with FileSystems.create(f"gs://{emu.bucket}/damaged/{name}", compression_type="uncompressed") as handle:
            handle.write(data)
    output = f"gs://{emu.bucket}/damaged-out/predictions"
    launch(emu, f"--input=gs://{emu.bucket}/damaged/*.txt.gz", f"--output={output}", f"--model={SAMPLE_MODEL}")
    summary = capfd.readouterr().out
    dead_letters = {row["origin"].rsplit("/", 1)[1]: row for row in read_json_lines(output + "_error_records-*.jsonl")}
    assert {name: row["reason"] for name, row in dead_letters.items()} == {
        "b-truncated.txt.gz": "truncated_input",
        "c-wrong-crc.txt.gz": "checksum_mismatch",
        "d-not-gzip.txt.gz": "corrupt_input",
    }
    keys = {row["key"] for row in read_json_lines(output + "-*.jsonl")}
    assert set(range(1000)) <= keys and set(range(3000, 4000)) <= keys
    truncated = sorted(key for key in keys if 1000 <= key < 2000)
    assert 0 < len(truncated) < 1000 and truncated == list(range(1000, 1000 + len(truncated)))
    assert "WARNING: damaged input (checksum_mismatch, corrupt_input, truncated_input)" in summary
    assert "records read != predictions" not in summary


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--source=bigquery", "--input=mnist.nope"], "error: --input=mnist.nope: no such BigQuery table"),
        (
            ["--source=bigquery", "--input=mnist.wrong_columns", "--sink=text"],
            "error: --input=mnist.wrong_columns: the table has no column 'key' to key the predictions; set --key_field",
        ),
        (
            ["--source=bigquery", "--input=mnist.wrong_columns", "--sink=text", "--key_field=id"],
            "error: --input=mnist.wrong_columns: the table lacks the model's input(s) image; it has pixels, which the "
            "model does not take",
        ),
        (["--sink=bigquery", "--output=nodataset.predict"], "does not exist; create it first"),
        (
            ["--sink=bigquery", "--output=mnist.predict", "--temp_location=/tmp/local"],
            "error: --temp_location must be a gs:// folder",
        ),
        (
            ["--source=bigquery", "--input=mnist.narrow", "--sink=text"],
            "takes 784 values per record (input shape (28, 28, 1)), but the first record of --input has 3",
        ),
        (
            ["--source=bigquery", "--input=", "--query=SELEC key, image FROM mnist.images", "--sink=text"],
            "error: --query: BigQuery refuses it: 400 ",
        ),
        (
            ["--source=bigquery", "--input=", "--query=SELECT id, pixels FROM mnist.wrong_columns", "--sink=text"],
            "error: --query: the query's result has no column 'key' to key the predictions",
        ),
        (
            ["--source=bigquery", "--input=mnist.images", "--format=csv", "--sink=text"],
            "error: --format applies only to file inputs (source=text)",
        ),
    ],
)
def test_bigquery_launch_mistakes_are_one_line(emu, bq, images_uri, capfd, args, expected):
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.wrong_columns AS SELECT 1 AS id, 'x' AS pixels").result()
    bq.query(f"CREATE OR REPLACE TABLE {DATASET}.narrow AS SELECT 1 AS key, '0.5,0.5,0.5' AS image").result()
    base = [f"--input={images_uri}", "--output=unused", f"--model={SAMPLE_MODEL}"]
    overridden = {arg.split("=", 1)[0] for arg in args}
    argv = [arg for arg in base if arg.split("=", 1)[0] not in overridden] + args
    assert run([*emu.beam_options(), *argv]) == 2
    err = capfd.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err


def format_inputs(folder, format_models) -> dict:
    """(input args, model, expected schema fields, rows) for each file format."""
    import tensorflow as tf

    from tests.model_factories import serialized_example

    records = [
        {"key": k, "features": [1.0, 2.0, k], "count": 2, "tag": f"t{k}", "sequence": [0.5] * (1 + k % 2)}
        for k in range(6)
    ]
    (folder / "in.jsonl").write_text("\n".join(json.dumps(record) for record in records) + "\n")
    with tf.io.TFRecordWriter(str(folder / "in.tfrecord")) as writer:
        for key in range(5):
            writer.write(serialized_example([key, 1.0], id=key))
    return {
        "jsonl": (
            [f"--input={folder / 'in.jsonl'}", f"--model={format_models['multi']}"],
            [
                ("key", "INTEGER", "REQUIRED"),
                ("label", "STRING", "REQUIRED"),
                ("score", "FLOAT", "REQUIRED"),
                ("stats", "FLOAT", "REPEATED"),
            ],
            6,
        ),
        "csv": (
            [
                f"--input={SAMPLES / 'penguins/penguins.csv'}",
                f"--model={SAMPLES / 'penguins/model'}",
                "--included_fields=island",
            ],
            [
                ("key", "INTEGER", "REQUIRED"),
                ("probabilities", "FLOAT", "REPEATED"),
                ("species", "STRING", "REQUIRED"),
                ("island", "STRING", "NULLABLE"),
            ],
            333,
        ),
        "tfrecord": (
            [f"--input={folder / 'in.tfrecord'}", f"--model={format_models['examples']}", "--key_field=id"],
            [("id", "INTEGER", "REQUIRED"), ("total", "FLOAT", "REQUIRED")],
            5,
        ),
        "files": (
            [f"--input={SAMPLES / 'png/digits'}/81[0-1]?.png", f"--model={SAMPLES / 'png/model'}"],
            [("key", "STRING", "REQUIRED"), ("prediction", "INTEGER", "REQUIRED"), ("confidence", "FLOAT", "REQUIRED")]
            + [(f"pred{index}", "FLOAT", "REQUIRED") for index in range(10)],
            20,
        ),
    }


@pytest.mark.parametrize("record_format", ["jsonl", "csv", "tfrecord", "files"])
def test_every_file_format_to_bigquery_gets_a_schema_from_the_signature(
    emu, bq, tmp_path, format_models, record_format
):
    args, fields, count = format_inputs(tmp_path, format_models)[record_format]
    table = f"{DATASET}.by_format_{record_format}"
    launch(emu, *args, "--sink=bigquery", f"--output={table}")
    schema = bq.get_table(f"{emu.project}.{table}").schema
    assert [(field.name, field.field_type, field.mode) for field in schema] == fields
    assert scalar(bq, f"SELECT COUNT(*) FROM {table}") == count
    tables = {item.table_id for item in bq.list_tables(DATASET)}
    assert f"by_format_{record_format}_error_records" not in tables  # no dead letters: no load job, no error table


def test_a_table_of_named_columns_feeds_a_model_by_name_to_text_and_to_bigquery(emu, bq, tmp_path, capfd):
    from google.cloud import bigquery

    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        autodetect=False,
        write_disposition="WRITE_TRUNCATE",
        schema=[
            bigquery.SchemaField(name, kind)
            for name, kind in [
                ("key", "INTEGER"),
                ("island", "STRING"),
                ("bill_length_mm", "FLOAT"),
                ("bill_depth_mm", "FLOAT"),
                ("flipper_length_mm", "FLOAT"),
                ("body_mass_g", "FLOAT"),
                ("sex", "STRING"),
                ("species", "STRING"),
            ]
        ],
    )
    with open(SAMPLES / "penguins/penguins.csv", "rb") as handle:
        bq.load_table_from_file(handle, f"{DATASET}.penguins", job_config=config).result()
    args = [
        "--source=bigquery",
        f"--input={DATASET}.penguins",
        f"--model={SAMPLES / 'penguins/model'}",
        "--included_fields=species",
    ]
    capfd.readouterr()
    assert run([*args, "--sink=text", f"--output={tmp_path / 'p'}", *emu.beam_options()]) == 2
    error = capfd.readouterr().err  # species is a model output too: one line at launch
    assert error.startswith("error: --included_fields: species would overwrite the key or a prediction column;")
    assert error.count("\n") == 1
    args[-1] = "--included_fields=island"
    launch(emu, *args, "--sink=text", f"--output={tmp_path / 'p'}")
    predictions = read_json_lines(tmp_path / "p-*.jsonl")
    assert len(predictions) == 333 and {"key", "probabilities", "species", "island"} == set(predictions[0])
    launch(emu, *args, "--sink=bigquery", f"--output={DATASET}.penguin_predictions")
    assert scalar(bq, f"SELECT COUNT(*) FROM {DATASET}.penguin_predictions") == 333
    truth = {row["key"]: row["species"] for row in rows(bq, f"SELECT key, species FROM {DATASET}.penguins")}
    predicted = rows(bq, f"SELECT key, species FROM {DATASET}.penguin_predictions")
    assert sum(truth[row["key"]] == row["species"] for row in predicted) >= 0.9 * 333


def test_vertex_ai_shape_in_bigquery_has_the_instance_columns_a_json_prediction_and_an_errors_struct(emu, bq, tmp_path):
    """--output_shape=vertex to BigQuery: Vertex AI's predictions table (the instance's columns, then
    `prediction`, then the excluded fields attached) and its errors table (the instance's columns, then
    `errors`, a STRUCT of code and message). No key field given: the `key` column is a field like any other."""
    from google.cloud import bigquery

    source = tmp_path / "penguins.csv"
    lines = (SAMPLES / "penguins/penguins.csv").read_text().splitlines()
    source.write_text("\n".join([*lines[:11], "999,Dream,,17.0,190,3500,male,Adelie"]) + "\n")  # no bill length
    names = ["key", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "species"]
    kinds = ["INTEGER", "STRING", "FLOAT", "FLOAT", "FLOAT", "FLOAT", "STRING", "STRING"]
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        write_disposition="WRITE_TRUNCATE",
        schema=[bigquery.SchemaField(name, kind) for name, kind in zip(names, kinds, strict=True)],
    )
    with open(source, "rb") as handle:
        bq.load_table_from_file(handle, f"{DATASET}.penguins_ten", job_config=config).result()
    launch(
        emu,
        "--source=bigquery",
        f"--input={DATASET}.penguins_ten",
        f"--model={SAMPLES / 'penguins/model'}",
        "--sink=bigquery",
        f"--output={DATASET}.vertex_predictions",
        "--output_shape=vertex",
        "--instance_type=object",  # Vertex AI's default for a table is an array; this model takes named inputs
        "--excluded_fields=key,species",
    )
    inputs = [  # the row's columns Vertex AI sends, in the table's order and of its types
        ("island", "STRING"),
        ("bill_length_mm", "FLOAT"),
        ("bill_depth_mm", "FLOAT"),
        ("flipper_length_mm", "FLOAT"),
        ("body_mass_g", "FLOAT"),
        ("sex", "STRING"),
    ]
    schema = bq.get_table(f"{emu.project}.{DATASET}.vertex_predictions").schema
    assert [(field.name, field.field_type) for field in schema] == [
        *inputs,
        ("prediction", "STRING"),
        ("key", "INTEGER"),  # excluded fields attached where no key field is given, as Vertex AI does
        ("species", "STRING"),
    ]
    predicted = rows(bq, f"SELECT key, bill_length_mm, prediction FROM {DATASET}.vertex_predictions ORDER BY key")
    assert [row["key"] for row in predicted] == [int(line.split(",")[0]) for line in lines[1:11]]
    assert predicted[0]["bill_length_mm"] == pytest.approx(39.1)
    assert json.loads(predicted[0]["prediction"])["species"] == "Adelie"
    errors = bq.get_table(f"{emu.project}.{DATASET}.vertex_predictions_error_records").schema
    assert [(field.name, field.field_type) for field in errors] == [
        *inputs,
        ("errors", "RECORD"),
        ("key", "INTEGER"),  # attached after the errors, as after the prediction
        ("species", "STRING"),
    ]
    (error,) = rows(
        bq,
        f"SELECT island, bill_length_mm, key, errors.code AS code, errors.message AS message "
        f"FROM {DATASET}.vertex_predictions_error_records",
    )
    assert (error["island"], error["bill_length_mm"], error["key"], error["code"]) == ("Dream", None, 999, 3)
    assert error["message"].startswith("missing_field: field 'bill_length_mm' is null")
