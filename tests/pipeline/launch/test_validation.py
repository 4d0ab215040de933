"""validate(): the parameters checked against files, tables and the model, into a JobConfig, or
one LaunchError line that says what to change."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import IoKind, JobConfig, StatisticsPlan
from pipeline.data.formats import KEY_VALUES
from pipeline.data.instances import KEY_INT, Feeding
from pipeline.data.rows import RowLayout
from pipeline.errors import LaunchError
from pipeline.launch.parameters.base import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE
from pipeline.launch.validation import validate
from pipeline.model.files import ModelFormat
from pipeline.model.memory import ModelCopies
from pipeline.model.signatures import ModelSignature, TensorSpec
from tests.emulators import CloudEmulators
from tests.model_factories import CLASSES, WIDTH

IMAGE = TensorSpec("image", "float32", (WIDTH,))
SCORES = TensorSpec("scores", "float32", (CLASSES,))
REMOTE = "--runner=DataflowRunner"


def key_values_file(path: Path, width: int = WIDTH, count: int = 3) -> Path:
    path.write_text("".join(f"{key}:" + ",".join(["0.5"] * width) + "\n" for key in range(count)))
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of key:v0,... files: two of the model's width, one too narrow."""
    folder = tmp_path_factory.mktemp("inputs")
    key_values_file(folder / "part-0.txt")
    key_values_file(folder / "part-1.txt", count=2)
    key_values_file(folder / "narrow.dat", width=5)
    return folder


@pytest.fixture(scope="module")
def model(tiny_models) -> str:
    return str(tiny_models["saved_model_flat"])


def validated(*args: str) -> JobConfig:
    return validate(PipelineOptions(list(args)))


def refusal(*args: str) -> str:
    with pytest.raises(LaunchError) as error:
        validated(*args)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_local_text_job_is_checked_into_its_config(inputs, model, tmp_path):
    output = str(tmp_path / "out" / "predictions")
    pattern = str(inputs / "part-*.txt")
    config = validated(f"--input={pattern}", f"--output={output}", f"--model={model}", "--batch_size=64")
    signature = ModelSignature(ModelFormat.SAVED_MODEL, (IMAGE,), (SCORES,), model)
    sizes = sum((inputs / name).stat().st_size for name in ("part-0.txt", "part-1.txt"))
    assert config == JobConfig(
        source=IoKind.TEXT,
        input=pattern,
        query=None,
        sink=IoKind.TEXT,
        output=output,
        dead_letter=output + "_error_records",
        dead_letter_kind=IoKind.TEXT,
        model=model,
        batch_size=64,
        signature=signature,
        project=None,
        record_format=KEY_VALUES,
        decoding=KEY_VALUES,
        feeding=Feeding((IMAGE,), "key", KEY_INT, None),
        rows=RowLayout((SCORES,), "key", KEY_INT, ()),
        input_columns=None,
        model_load_s=config.model_load_s,  # a duration: checked below
        input_rows=None,
        input_bytes=sizes,
        input_files=2,
        gpu_count=0,
        model_copies=ModelCopies(per_vm=False, reason="local run"),
        statistics=StatisticsPlan(output),  # on by default, beside the predictions
    )
    assert config.model_load_s >= 0.0
    assert list((tmp_path / "out").iterdir()) == []  # the write probes leave nothing behind


def test_defaults_batch_size_and_puts_dead_letters_beside_an_output_given_with_a_slash(inputs, model, tmp_path):
    output = str(tmp_path / "predictions") + "/"
    config = validated(f"--input={inputs / 'part-0.txt'}", f"--output={output}", f"--model={model}")
    assert config.batch_size == DEFAULT_BATCH_SIZE
    assert (config.dead_letter, config.dead_letter_kind) == (str(tmp_path / "predictions_error_records"), IoKind.TEXT)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", f"--batch_size=abc: must be a whole number from 1 to {MAX_BATCH_SIZE}"),
        ("2.5", f"--batch_size=2.5: must be a whole number from 1 to {MAX_BATCH_SIZE}"),
        ("0", f"--batch_size=0: must be from 1 to {MAX_BATCH_SIZE}"),
        ("-3", f"--batch_size=-3: must be from 1 to {MAX_BATCH_SIZE}"),
        (str(MAX_BATCH_SIZE + 1), f"--batch_size={MAX_BATCH_SIZE + 1}: must be from 1 to {MAX_BATCH_SIZE}"),
    ],
)
def test_a_batch_size_out_of_range_is_refused(value, message):
    assert refusal(f"--batch_size={value}", "--output=out", "--model=model") == message


@pytest.mark.parametrize("value", ["1", str(MAX_BATCH_SIZE), " 64 "])
def test_batch_sizes_in_range_pass_on_to_the_next_check(value):
    """The refusal that follows (no --output) shows the batch size itself was accepted."""
    assert refusal(f"--batch_size={value}", "--model=model").startswith("--output is required")


@pytest.mark.parametrize("output", [None, "   "])
def test_output_is_required(output):
    args = ["--model=model"] + ([f"--output={output}"] if output is not None else [])
    assert refusal(*args) == (
        "--output is required: a file prefix for sink=text, a table for sink=bigquery or a topic for "
        "sink=pubsub (in the Console form: output_files, output_table or output_topic)"
    )


def test_model_is_required():
    assert refusal("--output=out") == "--model is required: a SavedModel directory, a .keras file or a TF1 checkpoint"


def test_input_is_required_for_a_text_source():
    assert refusal("--output=out", "--model=model") == (
        "--input is required: a file pattern such as gs://bucket/images*.txt.gz (in the Console form: input_files)"
    )


def test_an_unknown_source_is_refused():
    assert refusal("--source=kafka", "--output=out", "--model=model") == (
        "--source=kafka: must be one of text, bigquery, pubsub (or cs, bq)"
    )


def test_a_query_is_refused_for_a_text_source():
    assert refusal("--query=SELECT 1", "--input=in.txt", "--output=out", "--model=model") == (
        "--query applies only to source=bigquery; remove it or set --source=bigquery"
    )


@pytest.mark.parametrize("source", ["bigquery", "bq"])
def test_a_record_format_is_refused_for_a_bigquery_source(source):
    args = (f"--source={source}", "--format=csv", "--input=ds.t", "--output=ds.p", "--model=model")
    assert refusal(*args) == ("--format applies only to file inputs (source=text); a table's columns are fed by name")


def test_a_table_and_a_query_together_are_refused():
    args = ("--source=bigquery", "--input=ds.t", "--query=SELECT 1", "--output=ds.p", "--model=model")
    assert refusal(*args) == "--input and --query are both set; give one of them for source=bigquery"


def test_an_unknown_record_format_is_refused(inputs):
    args = (f"--input={inputs / 'part-0.txt'}", "--format=xml", "--output=out", "--model=model")
    assert refusal(*args) == "--format=xml: must be one of auto, key_values, jsonl, csv, tfrecord, files, parquet, avro"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_dead_letters_in_the_output_location_are_refused(inputs, tmp_path, suffix):
    output = str(tmp_path / "predictions")
    args = (f"--input={inputs / 'part-0.txt'}", f"--output={output}", f"--dead_letter={output}{suffix}")
    assert refusal(*args, "--model=model") == (
        f"--dead_letter={output}{suffix}: is the same as --output, so one would overwrite the other; "
        f"leave it unset for {output}_error_records"
    )


def test_a_dead_letter_table_that_is_the_output_table_spelled_otherwise_is_refused(inputs):
    args = (f"--input={inputs / 'part-0.txt'}", "--sink=bigquery", "--project=p", "--output=ds.preds")
    message = refusal(*args, "--dead_letter=p:ds.preds", "--model=model")
    assert message.startswith("--dead_letter=p:ds.preds: is the same as --output")


def test_a_table_given_as_a_text_output_is_refused(inputs):
    args = (f"--input={inputs / 'part-0.txt'}", "--output=p:ds.preds", "--model=model")
    assert refusal(*args) == (
        "--output=p:ds.preds: looks like a BigQuery table, but it would be written as text files; "
        "set --sink=bigquery for table outputs, or give a path"
    )


def test_a_path_given_as_a_bigquery_output_is_refused(inputs):
    args = (f"--input={inputs / 'part-0.txt'}", "--sink=bigquery", "--output=gs://b/preds", "--model=model")
    assert refusal(*args) == ("--output=gs://b/preds: not a BigQuery table; use project:dataset.table or dataset.table")


@pytest.mark.parametrize("temp_location", [None, "/tmp/beam", "bucket/tmp"])
def test_a_bigquery_sink_needs_a_gs_temp_location(inputs, temp_location):
    args = [f"--input={inputs / 'part-0.txt'}", "--sink=bigquery", "--output=p:ds.preds", "--model=model"]
    args += [f"--temp_location={temp_location}"] if temp_location else []
    assert refusal(*args) == "--temp_location must be a gs:// folder to write BigQuery tables (load files go there)"


@pytest.mark.parametrize("pattern", ["/data/images*.txt", "images.txt", "file:///data/images.txt"])
def test_a_local_input_is_refused_on_a_remote_runner(pattern):
    """Refused before any file is listed or any service called: remote workers cannot read it."""
    args = (REMOTE, "--project=p", f"--input={pattern}", "--output=gs://b/out", "--model=gs://b/model")
    assert refusal(*args) == (
        f"--input={pattern}: a local path cannot be read by the workers of a remote runner; give a gs:// path"
    )


def test_a_missing_model_is_a_launch_error(inputs, tmp_path):
    missing = str(tmp_path / "no-model")
    args = (f"--input={inputs / 'part-0.txt'}", f"--output={tmp_path / 'out'}", f"--model={missing}")
    assert refusal(*args) == f"--model={missing}: nothing exists at this path"


def test_records_of_another_width_than_the_model_takes_are_refused(inputs, model, tmp_path):
    args = (f"--input={inputs / 'narrow.dat'}", f"--output={tmp_path / 'out'}", f"--model={model}")
    assert refusal(*args) == (
        f"--model={model}: takes 12 values per record (input shape (12,)), but the first record of --input has 5; "
        "check that the model and the data belong together"
    )


# ------------------------------------------------------------------ BigQuery sinks, on the emulator


@pytest.fixture(scope="module")
def output_dataset(cloud_emulators: CloudEmulators) -> str:
    name = f"validation_{uuid.uuid4().hex[:8]}"
    cloud_emulators.bq.client().create_dataset(name)
    return name


@pytest.mark.emulators
def test_a_bigquery_sink_sends_dead_letters_to_a_table_beside_the_output(
    cloud_emulators, output_dataset, inputs, model
):
    config = validated(
        f"--input={inputs / 'part-0.txt'}",
        "--sink=bq",
        f"--output={output_dataset}.preds",
        f"--model={model}",
        *cloud_emulators.beam_options(),
    )
    assert (config.sink, config.output) == (IoKind.BIGQUERY, f"{output_dataset}.preds")
    assert (config.dead_letter, config.dead_letter_kind) == (f"{output_dataset}.preds_error_records", IoKind.BIGQUERY)
    assert config.project == cloud_emulators.project


@pytest.mark.emulators
def test_vertex_ais_shape_loads_its_tables_only_while_empty_unless_told_to_replace(
    cloud_emulators, output_dataset, inputs, model
):
    args = (
        f"--input={inputs / 'part-0.txt'}",
        "--sink=bigquery",
        f"--output={output_dataset}.vertex_preds",
        f"--model={model}",
        *cloud_emulators.beam_options(),
    )
    assert validated(*args, "--output_shape=vertex").new_tables_only  # Vertex AI writes new tables only
    assert not validated(*args, "--output_shape=vertex", "--existing_tables=replace").new_tables_only
    assert not validated(*args).new_tables_only  # the template's rows replace a table's rows
    assert validated(*args, "--existing_tables=refuse").new_tables_only


@pytest.mark.emulators
def test_vertex_ais_tables_with_a_column_named_twice_are_refused_at_launch_where_they_are_written(
    cloud_emulators, output_dataset, model, tmp_path
):
    """A CSV column `errors` is an instance column, which the errors table has beside its own `errors`: refused
    at launch where the dead letters go to a table, not at the end of the job by BigQuery."""
    source = tmp_path / "values.csv"
    columns = ["errors", *(f"v{index}" for index in range(1, WIDTH))]
    source.write_text(",".join(columns) + "\n" + ",".join(["0.5"] * WIDTH) + "\n")
    args = (f"--input={source}", f"--model={model}", "--output_shape=vertex", *cloud_emulators.beam_options())
    to_tables = (*args, "--sink=bigquery", f"--output={output_dataset}.twice")
    assert refusal(*to_tables).startswith(
        "--output_shape=vertex: the errors table would have two columns named errors: a field of the records (a "
        "column of the instance), and Vertex AI's errors column;"
    )
    validated(*to_tables, f"--dead_letter={tmp_path / 'errors'}")  # error lines nest the instance


@pytest.mark.emulators
def test_a_bigquery_sinks_dead_letters_go_to_files_when_given_a_path(cloud_emulators, output_dataset, inputs, model):
    dead_letter = f"gs://{cloud_emulators.bucket}/validation/rejected"
    config = validated(
        f"--input={inputs / 'part-0.txt'}",
        "--sink=bigquery",
        f"--output={output_dataset}.preds",
        f"--dead_letter={dead_letter}",
        f"--model={model}",
        *cloud_emulators.beam_options(),
    )
    assert (config.dead_letter, config.dead_letter_kind) == (dead_letter, IoKind.TEXT)


@pytest.mark.emulators
def test_a_bigquery_output_in_a_missing_dataset_is_refused(cloud_emulators, inputs, model):
    args = (f"--input={inputs / 'part-0.txt'}", "--sink=bigquery", "--output=no_such_dataset.preds")
    assert refusal(*args, f"--model={model}", *cloud_emulators.beam_options()) == (
        f"--output=no_such_dataset.preds: dataset {cloud_emulators.project}:no_such_dataset does not exist; "
        "create it first"
    )


# Streaming jobs: a subscription for input, outputs by what they name; Pub/Sub on its emulator.


@pytest.fixture(scope="module")
def stream(pubsub_emulator) -> dict[str, str]:
    topic = pubsub_emulator.topic("validated-in")
    output = pubsub_emulator.topic("validated-out")
    pubsub_emulator.topic("validated-out_error_records")
    return {"subscription": pubsub_emulator.subscription("validated-in-sub", topic), "topic": output}


@pytest.mark.emulators
def test_a_subscription_makes_a_streaming_job_writing_to_the_topic_it_names(stream, model):
    config = validated(f"--input={stream['subscription']}", f"--output={stream['topic']}", f"--model={model}")
    assert (config.source, config.sink, config.dead_letter_kind) == (IoKind.PUBSUB, IoKind.PUBSUB, IoKind.PUBSUB)
    assert config.streaming and config.record_format == "jsonl"  # what auto means for messages
    assert config.dead_letter == stream["topic"] + "_error_records"
    assert (config.max_batch_wait_s, config.window_s, config.model_poll_s) == (0.5, 60, 60)


@pytest.mark.emulators
def test_a_streams_table_output_needs_no_temp_location_and_a_path_is_text(stream, model, cloud_emulators, tmp_path):
    from google.cloud import bigquery

    bigquery.Client().create_dataset("validated", exists_ok=True)
    args = (f"--input={stream['subscription']}", f"--model={model}", f"--project={cloud_emulators.project}")
    config = validated(*args, "--output=validated.predictions")
    assert (config.sink, config.dead_letter_kind) == (IoKind.BIGQUERY, IoKind.BIGQUERY)
    config = validated(*args, f"--output={tmp_path / 'p'}", "--window_seconds=10")
    assert (config.sink, config.dead_letter_kind, config.window_s) == (IoKind.TEXT, IoKind.TEXT, 10)


@pytest.mark.emulators
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--format=csv",), "--format=csv: a message is one of jsonl, key_values, files (auto: jsonl)"),
        (("--query=SELECT 1",), "--query applies only to source=bigquery; a Pub/Sub input is a subscription"),
        (("--max_batch_wait_seconds=soon",), "--max_batch_wait_seconds=soon: must be a number of seconds from 0"),
        (("--window_seconds=1.5",), "--window_seconds=1.5: must be a whole number of seconds from 1 to 86400"),
        (("--dead_letter=projects/test-project/topics/nowhere",), "--dead_letter=projects/test-project/topics/"),
    ],
)
def test_a_stream_launch_mistake_is_one_line(stream, model, extra, expected):
    args = (f"--input={stream['subscription']}", f"--output={stream['topic']}", f"--model={model}")
    assert refusal(*args, *extra).startswith(expected)


@pytest.mark.emulators
def test_parquet_files_are_refused_in_a_streaming_job_which_writes_json_lines_per_window(stream, model, tmp_path):
    args = (f"--input={stream['subscription']}", f"--output={tmp_path / 'p'}", f"--model={model}")
    assert refusal(*args, "--output_format=parquet") == (
        "--output_format=parquet: a streaming job writes JSON lines per window; Parquet is for batch jobs"
    )


def test_the_output_format_reaches_the_job_and_is_json_lines_unless_asked(inputs, model, tmp_path):
    args = (f"--input={inputs / 'part-0.txt'}", f"--output={tmp_path / 'p'}", f"--model={model}")
    assert validated(*args).output_format == "jsonl"
    assert validated(*args, "--output_format=Parquet ").output_format == "parquet"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--output_format=csv",), "--output_format=csv: must be one of jsonl, parquet"),
        (
            ("--output_format=parquet", "--sink=bigquery", "--output=mnist.predict"),
            "--output_format=parquet: applies only to file outputs (sink=text), not to a bigquery output",
        ),
    ],
)
def test_an_output_format_that_cannot_be_written_is_one_line(inputs, model, tmp_path, extra, expected):
    args = (f"--input={inputs / 'part-0.txt'}", f"--output={tmp_path / 'p'}", f"--model={model}")
    assert refusal(*args, *extra) == expected


def test_a_topic_output_needs_a_streaming_job(inputs, model):
    message = refusal(f"--input={inputs / 'part-*.txt'}", "--output=projects/p/topics/out", f"--model={model}")
    assert message == "--sink=pubsub writes from a streaming job: read a subscription (--source=pubsub)"


def test_a_versioned_model_folder_serves_its_highest_version_in_a_batch_job(inputs, tmp_path):
    from tests.model_factories import sharpened_saved_model

    for version in (1, 3):
        sharpened_saved_model(tmp_path / "versions" / str(version), float(version))
    args = (f"--input={inputs / 'part-*.txt'}", f"--output={tmp_path / 'p'}", f"--model={tmp_path / 'versions'}")
    config = validated(*args)
    assert config.model_version == 3 and config.rows.versioned
    assert config.rows.schema()["fields"][-1] == {"name": "model_version", "type": "INTEGER", "mode": "NULLABLE"}
    assert refusal(*args, "--included_fields=model_version").startswith("--included_fields: model_version")


@pytest.mark.parametrize("share", ["0", "1.5", "half"])
def test_a_failure_share_outside_0_to_1_is_one_line(inputs, model, tmp_path, share):
    message = refusal(
        f"--input={inputs / 'part-*.txt'}",
        f"--output={tmp_path / 'p'}",
        f"--model={model}",
        f"--max_failure_share={share}",
    )
    assert message == f"--max_failure_share={share}: must be a share above 0 and at most 1 (1 never stops the job)"


def test_the_failure_share_reaches_the_job(inputs, model, tmp_path):
    config = validated(f"--input={inputs / 'part-*.txt'}", f"--output={tmp_path / 'p'}", f"--model={model}")
    assert config.max_failure_share == 0.5
    args = (f"--input={inputs / 'part-*.txt'}", f"--output={tmp_path / 'p'}", f"--model={model}")
    assert validated(*args, "--max_failure_share=1").max_failure_share == 1.0


def test_a_folder_of_parquet_parts_is_planned_by_its_columns_and_handed_on_with_a_trailing_slash(tmp_path):
    from tests.conftest import SAMPLES

    penguins = SAMPLES / "penguins"
    config = validated(
        f"--input={penguins / 'parts'}",
        f"--model={penguins / 'model'}",
        f"--output={tmp_path / 'p'}",
        "--included_fields=island",
    )
    assert (config.input, config.record_format, config.decoding) == (f"{penguins / 'parts'}/", "parquet", "parquet")
    assert (config.input_files, config.feeding.key_kind, config.rows.included) == (3, KEY_INT, (("island", "STRING"),))
    assert set(config.input_columns) == {"key", "island", "sex", *(f"bill_{m}_mm" for m in ("length", "depth"))} | {
        "flipper_length_mm",
        "body_mass_g",
    }
