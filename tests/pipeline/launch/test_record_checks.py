"""Launch-time record plans: the first records, read as the job reads them, decide how records are
keyed and fed; every mismatch between records and model is one LaunchError line."""

from __future__ import annotations

import json

import pytest

from pipeline.data.batches import RecordBatch
from pipeline.data.decoders import BIGQUERY_KEY_VALUES, BIGQUERY_ROWS
from pipeline.data.formats import CSV, FILES, JSONL, KEY_VALUES, TFRECORD
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, Feeding
from pipeline.data.rows import VERTEX, RowLayout
from pipeline.data.vertex_rows import OBJECT
from pipeline.errors import LaunchError
from pipeline.launch.instance_options import InstanceOptions
from pipeline.launch.record_checks import RecordPlan, plan_for_files, plan_for_table
from pipeline.launch.table_checks import TableInfo
from pipeline.model.files import ModelFormat, locate_model
from pipeline.model.signatures import ModelSignature, TensorSpec, read_signature
from tests.model_factories import CLASSES, WIDTH, serialized_example

IMAGE = TensorSpec("image", "float32", (WIDTH,))
SCORES = TensorSpec("scores", "float32", (CLASSES,))
# The flat tiny SavedModel's signature: one float vector in, class scores out.
FLAT = ModelSignature(ModelFormat.SAVED_MODEL, (IMAGE,), (SCORES,), "gs://b/flat")
# A model fed by name, like model_factories.age_checking_saved_model.
AGE = TensorSpec("age", "float32", ())
WEIGHT = TensorSpec("weight", "float32", ())
SCORE = TensorSpec("score", "float32", ())
NAMED = ModelSignature(ModelFormat.SAVED_MODEL, (AGE, WEIGHT), (SCORE,), "gs://b/named")
# A model of the TFX convention, like model_factories.example_parsing_saved_model: serialized Examples in.
EXAMPLES = TensorSpec("examples", "string", ())
TOTAL = TensorSpec("total", "float32", ())
PARSING = ModelSignature(ModelFormat.SAVED_MODEL, (EXAMPLES,), (TOTAL,), "gs://b/parsing")

TABLE = "--input=p:d.t: the table"


def key_values_line(key: int, width: int = WIDTH) -> bytes:
    return f"{key}:".encode() + b",".join(b"0.5" for _ in range(width))


def json_batch(*records: object, origin: str = "gs://b/in.jsonl") -> RecordBatch:
    return RecordBatch(
        origin, 1, [json.dumps(record).encode() if not isinstance(record, bytes) else record for record in records]
    )


def launch_error(call, *args) -> str:
    with pytest.raises(LaunchError) as error:
        call(*args)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def tf1_signature(tiny_models) -> ModelSignature:
    """The TF1 checkpoint's real signature: inputs image and key (int64), outputs key and scores."""
    return read_signature(locate_model(str(tiny_models["tf1"])))


# ------------------------------------------------------------------ files


def test_key_values_records_feed_the_one_float_input_keyed_by_their_integer_key():
    first = RecordBatch("gs://b/in.txt", 1, [key_values_line(7)])
    plan = plan_for_files(FLAT, KEY_VALUES, first, "key", (), "--input")
    assert plan == RecordPlan(
        KEY_VALUES, Feeding((IMAGE,), "key", KEY_INT, None), RowLayout((SCORES,), "key", KEY_INT, ()), None
    )
    assert plan.rows.classes == CLASSES  # the 2017 sample's prediction/confidence/predN rows


def test_key_values_records_feed_a_tf1_graphs_key_input_and_rows_leave_out_its_key_echo(tf1_signature):
    first = RecordBatch("gs://b/in.txt", 1, [key_values_line(7)])
    plan = plan_for_files(tf1_signature, KEY_VALUES, first, "key", (), "--input")
    assert plan.feeding.inputs == (IMAGE,)
    assert plan.feeding.key_input == TensorSpec("key", "int64", ())
    assert plan.rows.outputs == (SCORES,)


def test_key_values_width_is_taken_from_the_first_well_formed_line():
    """Blank and keyless lines are the job's dead letters; the first good line decides the width."""
    first = RecordBatch("gs://b/in.txt", 1, [b"", b"no key here", key_values_line(3), key_values_line(4, width=5)])
    assert plan_for_files(FLAT, KEY_VALUES, first, "key", (), "--input").decoding == KEY_VALUES


def test_key_values_of_another_width_than_the_model_takes_is_refused():
    first = RecordBatch("gs://b/in.txt", 1, [key_values_line(1, width=5)])
    assert launch_error(plan_for_files, FLAT, KEY_VALUES, first, "key", (), "--input") == (
        "--model=gs://b/flat: takes 12 values per record (input shape (12,)), but the first record of --input "
        "has 5; check that the model and the data belong together"
    )


def test_key_values_cannot_feed_a_model_of_several_inputs():
    first = RecordBatch("gs://b/in.txt", 1, [key_values_line(1, width=2)])
    assert launch_error(plan_for_files, NAMED, KEY_VALUES, first, "key", (), "--input") == (
        "--model=gs://b/named: key:v0,v1,... records feed one input, but the model takes age, weight; "
        "give the records as JSON Lines or CSV (--format) to feed inputs by name"
    )


@pytest.mark.parametrize("record_format", [KEY_VALUES, FILES])
def test_formats_without_fields_refuse_included_fields(record_format):
    first = RecordBatch("gs://b/in.txt", 1, [key_values_line(1)])
    assert launch_error(plan_for_files, FLAT, record_format, first, "key", ("species",), "--input") == (
        f"--included_fields: {record_format} records have no fields to include"
    )


@pytest.mark.parametrize(
    ("key", "key_kind", "key_type"),
    [(7, KEY_INT, "INTEGER"), (7.0, KEY_INT, "INTEGER"), ("a-7", KEY_STR, "STRING")],
)
def test_json_lines_are_keyed_by_the_kind_of_the_first_records_key(key, key_kind, key_type):
    first = json_batch({"id": key, "image": [0.5] * WIDTH})
    plan = plan_for_files(FLAT, JSONL, first, "id", (), "--input")
    assert (plan.decoding, plan.feeding.key_field, plan.feeding.key_kind) == (JSONL, "id", key_kind)
    assert plan.rows.schema()["fields"][0] == {"name": "id", "type": key_type, "mode": "REQUIRED"}


def test_json_lines_without_the_key_field_are_keyed_by_position():
    plan = plan_for_files(FLAT, JSONL, json_batch({"image": [0.5] * WIDTH}), "key", (), "--input")
    assert plan.feeding.key_kind == KEY_POSITION
    assert plan.rows.schema()["fields"][0] == {"name": "key", "type": "STRING", "mode": "REQUIRED"}


def test_the_first_json_object_is_the_one_that_decides_passing_over_broken_lines():
    first = json_batch(b"not json", b"", {"id": "a", "image": [0.5] * WIDTH})
    assert plan_for_files(FLAT, JSONL, first, "id", (), "--input").feeding.key_kind == KEY_STR


def test_included_fields_take_their_type_from_the_first_record():
    record = {"id": 1, "image": [0.5] * WIDTH, "species": "adelie", "count": 2, "mass": 3.5, "ok": True}
    first = json_batch(record)
    plan = plan_for_files(FLAT, JSONL, first, "id", ("species", "count", "mass", "ok", "absent"), "--input")
    assert plan.feeding.included_fields == ("species", "count", "mass", "ok", "absent")
    assert plan.rows.included == (
        ("species", "STRING"),
        ("count", "INTEGER"),
        ("mass", "FLOAT"),
        ("ok", "BOOLEAN"),
        ("absent", "STRING"),
    )


def test_a_first_json_record_without_the_models_input_names_what_it_has():
    first = json_batch({"key": 1, "pixels": [0.5] * WIDTH})
    assert launch_error(plan_for_files, FLAT, JSONL, first, "key", (), "--input") == (
        "--input=gs://b/in.jsonl: the first record lacks the model's input(s) image; "
        "it has pixels, which the model does not take"
    )


def test_first_records_that_all_fail_to_decode_are_refused_with_the_first_reason():
    first = json_batch({"key": 1, "image": [0.5] * 3}, {"key": 2, "image": [0.5] * 4})
    assert launch_error(plan_for_files, FLAT, JSONL, first, "key", (), "--input") == (
        "--input: the first records do not fit the model: "
        "wrong_shape: field 'image' has shape (3,), the model takes (12,)"
    )


def test_first_records_of_which_one_decodes_are_accepted():
    """The others are the job's dead letters, not a reason to refuse the launch."""
    first = json_batch({"key": 1, "image": [0.5] * 3}, {"key": 2, "image": [0.5] * WIDTH})
    assert plan_for_files(FLAT, JSONL, first, "key", (), "--input").feeding.key_kind == KEY_INT


def test_text_keys_cannot_feed_a_tf1_graphs_integer_key_input(tf1_signature):
    first = json_batch({"key": "a", "image": [0.5] * WIDTH})
    assert launch_error(plan_for_files, tf1_signature, JSONL, first, "key", (), "--input") == (
        f"--model={tf1_signature.path}: input 'key' takes int64 keys, but the records' keys are text; "
        "key them by an integer field"
    )


def test_empty_inputs_are_planned_without_records_keyed_by_position():
    plan = plan_for_files(FLAT, JSONL, None, "key", (), "--input")
    assert plan.feeding == Feeding((IMAGE,), "key", KEY_POSITION, None)


def test_csv_is_keyed_by_its_first_rows_typed_values():
    """Vertex AI's rule: a quoted value is text, an unquoted one a number."""
    quoted = RecordBatch("gs://b/in.csv", 2, [b'"a7",1.5,60'], header=b"id,age,weight")
    unquoted = RecordBatch("gs://b/in.csv", 2, [b"7,1.5,60"], header=b"id,age,weight")
    assert plan_for_files(NAMED, CSV, quoted, "id", (), "--input").feeding.key_kind == KEY_STR
    plan = plan_for_files(NAMED, CSV, unquoted, "id", (), "--input")
    assert plan.feeding == Feeding((AGE, WEIGHT), "id", KEY_INT, None)
    assert plan.rows == RowLayout((SCORE,), "id", KEY_INT, ())


def test_a_csv_header_without_the_models_input_is_refused():
    first = RecordBatch("gs://b/in.csv", 2, [b"1,2,3"], header=b"id,age,height")
    assert launch_error(plan_for_files, NAMED, CSV, first, "id", (), "--input") == (
        "--input=gs://b/in.csv: the header lacks the model's input(s) weight; "
        "it has height, which the model does not take"
    )


def test_an_included_field_that_the_csv_header_lacks_is_refused():
    first = RecordBatch("gs://b/in.csv", 2, [b"1,2,3"], header=b"id,age,weight")
    assert launch_error(plan_for_files, NAMED, CSV, first, "id", ("species",), "--input") == (
        "--included_fields: the header of gs://b/in.csv has no column species"
    )


def test_csv_values_of_the_wrong_type_are_refused_with_the_field_named():
    first = RecordBatch("gs://b/in.csv", 2, [b'"a","old",3'], header=b"id,age,weight")
    assert launch_error(plan_for_files, NAMED, CSV, first, "id", (), "--input") == (
        "--input: the first records do not fit the model: wrong_type: field 'age': 'old' is not finite float32 numbers"
    )


def test_tfrecords_feed_the_one_string_input_keyed_by_an_example_feature():
    first = RecordBatch("gs://b/in.tfrecord", 0, [serialized_example([1.0, 2.0], key=5, species=b"gentoo")])
    plan = plan_for_files(PARSING, TFRECORD, first, "key", ("species",), "--input")
    assert plan.feeding == Feeding((EXAMPLES,), "key", KEY_INT, None, ("species",))
    assert plan.rows.included == (("species", "BYTES"),)


def test_tfrecords_without_the_key_feature_are_keyed_by_position():
    first = RecordBatch("gs://b/in.tfrecord", 0, [serialized_example([1.0, 2.0])])
    assert plan_for_files(PARSING, TFRECORD, first, "key", (), "--input").feeding.key_kind == KEY_POSITION


@pytest.mark.parametrize(
    ("record_format", "what", "hint"),
    [
        (TFRECORD, "each TFRecord record (a serialized tf.train.Example)", ""),
        (FILES, "each file's bytes", " (decode inside the model's serving function, as samples/png/model does)"),
    ],
)
def test_bytes_cannot_feed_a_float_input(record_format, what, hint):
    first = RecordBatch("", 0, [b"\x89PNG"], origins=("gs://b/a.png",))
    assert launch_error(plan_for_files, FLAT, record_format, first, "key", (), "--input") == (
        f"--model=gs://b/flat: {what} feeds one tf.string input of shape (None,), but the model takes "
        f"image float32 (None, 12){hint}"
    )


def test_whole_files_are_keyed_by_their_path():
    first = RecordBatch("", 0, [b"\x89PNG"], origins=("gs://b/a.png",))
    plan = plan_for_files(PARSING, FILES, first, "key", (), "--input")
    assert plan == RecordPlan(
        FILES, Feeding((EXAMPLES,), "key", KEY_POSITION, None), RowLayout((TOTAL,), "key", KEY_POSITION)
    )


# ------------------------------------------------------------------ tables


SEED_COLUMNS = {"key": "INTEGER", "image": "STRING"}


def test_the_2017_samples_table_feeds_its_image_column_as_key_values_lines():
    table = TableInfo(
        {**SEED_COLUMNS, "note": "STRING"}, 2, {"key": 1, "image": ",".join(["0.5"] * WIDTH), "note": "x"}
    )
    plan = plan_for_table(FLAT, table, "key", ("note",), TABLE)
    assert plan.decoding == BIGQUERY_KEY_VALUES
    assert plan.columns == ("key", "image", "note")
    assert plan.feeding == Feeding((IMAGE,), "key", KEY_INT, None, ("note",))
    assert plan.rows.included == (("note", "STRING"),)


def test_the_2017_samples_table_with_rows_of_another_width_is_refused():
    table = TableInfo(SEED_COLUMNS, 2, {"key": 1, "image": "0.5,0.5,0.5"})
    assert launch_error(plan_for_table, FLAT, table, "key", (), TABLE) == (
        "--model=gs://b/flat: takes 12 values per record (input shape (12,)), but the first record of --input "
        "has 3; check that the model and the data belong together"
    )


def test_a_seed_shaped_table_for_a_model_fed_by_name_is_checked_by_column_name():
    """key INTEGER + image STRING is the 2017 layout only for a model key:v0,... lines can feed."""
    assert launch_error(plan_for_table, NAMED, TableInfo(SEED_COLUMNS), "key", (), TABLE) == (
        "--input=p:d.t: the table lacks the model's input(s) age, weight; it has image, which the model does not take"
    )


@pytest.mark.parametrize(("key_type", "key_kind"), [("INTEGER", KEY_INT), ("INT64", KEY_INT), ("STRING", KEY_STR)])
def test_table_columns_feed_inputs_by_name_keyed_by_the_key_column(key_type, key_kind):
    table = TableInfo({"id": key_type, "age": "FLOAT", "weight": "FLOAT", "other": "STRING"})
    plan = plan_for_table(NAMED, table, "id", (), TABLE)
    assert plan == RecordPlan(
        BIGQUERY_ROWS,
        Feeding((AGE, WEIGHT), "id", key_kind, None),
        RowLayout((SCORE,), "id", key_kind, ()),
        ("id", "age", "weight"),  # only the columns the job needs are read
    )


def test_included_columns_are_read_once_and_typed_from_the_table_schema():
    columns = {"id": "STRING", "age": "FLOAT", "weight": "FLOAT", "price": "NUMERIC", "big": "BIGNUMERIC"}
    columns |= {"n": "INT64", "ok": "BOOL", "day": "DATE", "blob": "BYTES"}
    included = ("age", "price", "big", "n", "ok", "day", "blob")
    plan = plan_for_table(NAMED, TableInfo(columns), "id", included, TABLE)
    assert plan.columns == ("id", "age", "weight", "price", "big", "n", "ok", "day", "blob")
    assert plan.rows.included == (
        ("age", "FLOAT"),
        ("price", "FLOAT"),
        ("big", "FLOAT"),
        ("n", "INTEGER"),
        ("ok", "BOOLEAN"),
        ("day", "STRING"),
        ("blob", "BYTES"),
    )


def test_a_table_without_the_key_column_is_refused_listing_its_columns():
    table = TableInfo({"id": "STRING", "age": "FLOAT", "weight": "FLOAT"})
    assert launch_error(plan_for_table, NAMED, table, "key", (), TABLE) == (
        "--input=p:d.t: the table has no column 'key' to key the predictions; set --key_field to the column that "
        "identifies a row (it has id, age, weight)"
    )


def test_a_key_column_that_is_neither_integer_nor_text_is_refused():
    table = TableInfo({"key": "FLOAT", "age": "FLOAT", "weight": "FLOAT"})
    assert launch_error(plan_for_table, NAMED, table, "key", (), TABLE) == (
        "--input=p:d.t: the table: key column 'key' is FLOAT; it must be INTEGER or STRING"
    )


def test_an_included_field_the_table_lacks_is_refused():
    table = TableInfo({"key": "INTEGER", "age": "FLOAT", "weight": "FLOAT"})
    assert launch_error(plan_for_table, NAMED, table, "key", ("species", "island"), TABLE) == (
        "--included_fields: --input=p:d.t: the table has no column species, island"
    )


def test_a_query_result_without_the_models_inputs_is_refused():
    table = TableInfo({"id": "STRING", "age": "FLOAT", "height": "FLOAT"})
    assert launch_error(plan_for_table, NAMED, table, "id", (), "--query: the query's result") == (
        "--query: the query's result lacks the model's input(s) weight; it has height, which the model does not take"
    )


def test_a_first_row_that_does_not_fit_the_model_is_refused_and_no_row_means_no_check():
    columns = {"id": "STRING", "age": "STRING", "weight": "FLOAT"}
    bad_first_row = TableInfo(columns, 1, {"id": "a", "age": "old", "weight": 1.0})
    assert launch_error(plan_for_table, NAMED, bad_first_row, "id", (), TABLE) == (
        "--input=p:d.t: the table: the first records do not fit the model: "
        "wrong_type: field 'age': 'old' is not finite float32 numbers"
    )
    assert plan_for_table(NAMED, TableInfo(columns), "id", (), TABLE).decoding == BIGQUERY_ROWS


# ------------------------------------------------------------------ Vertex AI's shape (output_shape=vertex)

VERTEX_OPTIONS = InstanceOptions(output_shape=VERTEX)
KEYED_VERTEX = InstanceOptions(output_shape=VERTEX, key_given=True)


def test_with_vertex_ais_shape_and_no_key_field_given_records_are_keyed_by_position_and_write_their_instance():
    """Vertex AI has no key field unless keyField is set: `key` is one more field of the record."""
    first = json_batch({"key": 1, "age": 30.0, "weight": 60.0})
    plan = plan_for_files(NAMED, JSONL, first, "key", (), "--input", VERTEX_OPTIONS)
    assert plan.feeding.key_kind == KEY_POSITION
    assert (plan.rows.vertex.keyed, plan.rows.vertex.instance) == (False, OBJECT)
    keyed = plan_for_files(NAMED, JSONL, first, "key", (), "--input", KEYED_VERTEX)
    assert (keyed.feeding.key_kind, keyed.rows.vertex.keyed) == (KEY_INT, True)


def test_a_key_field_given_that_the_first_record_lacks_is_one_line_with_vertex_ais_shape():
    first = json_batch({"age": 30.0, "weight": 60.0})
    assert launch_error(plan_for_files, NAMED, JSONL, first, "id", (), "--input", KEYED_VERTEX) == (
        "--key_field=id: --input=gs://b/in.jsonl: the first record has no field id; Vertex AI's keyField names a "
        "field of every record (leave --key_field out to write each instance instead)"
    )


def test_a_key_field_given_for_whole_files_is_one_line_with_vertex_ais_shape():
    first = RecordBatch("gs://b/a.png", 0, [b"\x89PNG"], origins=["gs://b/a.png"])
    assert launch_error(plan_for_files, PARSING, FILES, first, "id", (), "--input", KEYED_VERTEX).startswith(
        "--key_field=id: a whole file has no field id;"
    )
    assert plan_for_files(PARSING, FILES, first, "key", (), "--input", VERTEX_OPTIONS).rows.vertex.instance == "uri"


def test_csv_rows_are_vertex_ais_arrays_by_default_and_objects_where_asked():
    first = RecordBatch("gs://b/in.csv", 2, [b"7,1.5,60"], header=b"id,age,weight")
    message = launch_error(plan_for_files, NAMED, CSV, first, "id", (), "--input", VERTEX_OPTIONS)
    assert message.startswith(
        "--instance_type=array (Vertex AI's default for CSV and BigQuery rows; give --instance_type=object to feed "
        "fields by name) feeds one array"
    )
    as_object = InstanceOptions(instance_type="object", output_shape=VERTEX)
    assert plan_for_files(NAMED, CSV, first, "id", (), "--input", as_object).rows.vertex.instance == OBJECT
    values = RecordBatch(
        "gs://b/in.csv",
        2,
        [b",".join(b"0.5" for _ in range(WIDTH))],
        header=b",".join(f"v{index}".encode() for index in range(WIDTH)),
    )
    plan = plan_for_files(FLAT, CSV, values, "key", (), "--input", VERTEX_OPTIONS)
    assert plan.feeding.array_fields == tuple(f"v{index}" for index in range(WIDTH))
    assert plan.rows.vertex.csv_header == plan.feeding.array_fields  # to read a dead-lettered line's fields
    assert [field["name"] for field in plan.rows.schema()["fields"]] == [*plan.feeding.array_fields, "prediction"]


def test_a_table_without_a_key_column_is_read_by_position_with_vertex_ais_shape():
    """Vertex AI sends every column of a row (an object instance): a column the model does not take is read
    and written too, so that predictions join back on the instance."""
    table = TableInfo({"age": "FLOAT", "weight": "FLOAT", "note": "STRING"})
    plan = plan_for_table(NAMED, table, "key", (), TABLE, InstanceOptions(instance_type="object", output_shape=VERTEX))
    assert (plan.feeding.key_kind, plan.columns) == (KEY_POSITION, ("age", "weight", "note"))
    assert [field["name"] for field in plan.rows.schema()["fields"]] == ["age", "weight", "note", "prediction"]
    assert launch_error(plan_for_table, NAMED, table, "key", (), TABLE, KEYED_VERTEX).startswith(
        "--input=p:d.t: the table has no column 'key' to key the predictions"
    )


def test_a_tables_instance_columns_keep_the_sources_types_not_the_models():
    """An INTEGER column fed to a float input stays INTEGER in the predictions and errors tables."""
    table = TableInfo({"id": "INTEGER", "age": "INTEGER", "weight": "FLOAT", "tags": "ARRAY<STRING>"})
    as_object = InstanceOptions(instance_type="object", output_shape=VERTEX, excluded=("tags",))
    plan = plan_for_table(NAMED, table, "key", (), TABLE, as_object)
    columns = [(field["name"], field["type"], field["mode"]) for field in plan.rows.schema()["fields"]]
    assert columns == [
        ("id", "INTEGER", "NULLABLE"),
        ("age", "INTEGER", "NULLABLE"),
        ("weight", "FLOAT", "NULLABLE"),
        ("prediction", "STRING", "NULLABLE"),
        ("tags", "STRING", "NULLABLE"),  # excluded, attached after the prediction (as JSON text)
    ]
    assert [field["name"] for field in plan.rows.dead_letter_schema()["fields"]] == [
        "id",
        "age",
        "weight",
        "errors",
        "tags",
    ]
    assert plan.columns == ("age", "weight", "tags", "id")


def test_a_json_records_instance_columns_are_its_fields_typed_by_the_models_inputs_else_as_vertex_ai_reads_them():
    first = json_batch({"age": 30, "weight": 60.5, "id": 12, "name": "a"})
    plan = plan_for_files(NAMED, JSONL, first, "key", (), "--input", VERTEX_OPTIONS)
    assert [(field["name"], field["type"]) for field in plan.rows.schema()["fields"]] == [
        ("age", "FLOAT"),  # the model's float input, though the first value is a whole number
        ("weight", "FLOAT"),
        ("id", "FLOAT"),  # a JSON number is a double to Vertex AI
        ("name", "STRING"),
        ("prediction", "STRING"),
    ]


def test_a_csv_rows_instance_columns_are_typed_as_vertex_ai_reads_the_row():
    first = RecordBatch("gs://b/in.csv", 2, [b'7,"x",60'], header=b"id,tag,weight")
    options = InstanceOptions(instance_type="object", output_shape=VERTEX)
    signature = ModelSignature(ModelFormat.SAVED_MODEL, (TensorSpec("weight", "int64", ()),), (SCORE,), "gs://b/m")
    plan = plan_for_files(signature, CSV, first, "key", (), "--input", options)
    assert [(field["name"], field["type"]) for field in plan.rows.schema()["fields"]] == [
        ("id", "FLOAT"),  # unquoted: a number
        ("tag", "STRING"),  # quoted: text
        ("weight", "FLOAT"),
        ("prediction", "STRING"),
    ]


# ------------------------------------------------------------------ Parquet and Avro columns

LAKE = "--input=gs://lake/t/: the parquet files"


def column_batch(rows: list[dict], start: int = 0):
    import pyarrow as pa

    from pipeline.data.batches import ColumnBatch

    return ColumnBatch("gs://lake/t/part-0.parquet", start, pa.Table.from_pylist(rows))


def test_file_columns_feed_by_name_keyed_by_the_key_columns_type_and_only_those_read():
    from pipeline.launch.record_checks import plan_for_columns

    columns = {"id": "STRING", "age": "INTEGER", "weight": "FLOAT", "colour": "STRING", "extra": "ARRAY<FLOAT>"}
    first = column_batch([{"id": "a", "age": 3, "weight": 2.5, "colour": "red", "extra": [1.0]}])
    plan = plan_for_columns(NAMED, "parquet", TableInfo(columns), first, "id", ("colour", "extra"), LAKE)
    assert (plan.decoding, plan.feeding.key_kind, plan.columns) == (
        "parquet",
        KEY_STR,
        ("id", "age", "weight", "colour", "extra"),
    )
    assert plan.rows.included == (("colour", "STRING"), ("extra", "STRING"))
    unkeyed = plan_for_columns(NAMED, "avro", TableInfo({"age": "INTEGER", "weight": "FLOAT"}), None, "key", (), LAKE)
    assert (unkeyed.feeding.key_kind, unkeyed.columns) == (KEY_POSITION, ("age", "weight"))  # keyed by <file>:<row>


@pytest.mark.parametrize(
    ("columns", "included", "expected"),
    [
        ({"key": "INTEGER", "age": "FLOAT"}, (), f"{LAKE} lacks the model's input(s) weight"),
        (
            {"key": "FLOAT", "age": "FLOAT", "weight": "FLOAT"},
            (),
            f"{LAKE}: key column 'key' is FLOAT; it must be INTEGER or STRING (or set --key_field to a column that is)",
        ),
        (
            {"key": "INTEGER", "age": "STRING", "weight": "FLOAT"},
            (),
            f"{LAKE}: column 'age' is STRING, which input 'age' (float32 (None,)) cannot take",
        ),
        (
            {"key": "INTEGER", "age": "ARRAY<FLOAT>", "weight": "FLOAT"},
            (),
            f"{LAKE}: column 'age' is ARRAY<FLOAT>, which input 'age' (float32 (None,)) cannot take",
        ),
        (
            {"key": "INTEGER", "age": "FLOAT", "weight": "FLOAT"},
            ("colour",),
            f"--included_fields: {LAKE} has no column colour",
        ),
    ],
)
def test_what_no_row_of_the_files_could_feed_is_one_line(columns, included, expected):
    from pipeline.launch.record_checks import plan_for_columns

    assert launch_error(plan_for_columns, NAMED, "parquet", TableInfo(columns), None, "key", included, LAKE) == expected


def test_first_rows_that_all_fail_are_one_line_and_a_few_failing_are_left_to_the_job():
    from pipeline.launch.record_checks import plan_for_columns

    columns = TableInfo({"key": "INTEGER", "age": "FLOAT", "weight": "FLOAT"})
    some = column_batch([{"key": 1, "age": None, "weight": 1.0}, {"key": 2, "age": 3.0, "weight": 1.0}])
    assert plan_for_columns(NAMED, "parquet", columns, some, "key", (), LAKE).feeding.key_kind == KEY_INT
    none = column_batch([{"key": 1, "age": None, "weight": 1.0}])
    assert launch_error(plan_for_columns, NAMED, "parquet", columns, none, "key", (), LAKE) == (
        f"{LAKE}: the first records do not fit the model: missing_field: field 'age' is null"
    )


def test_tensor_inputs_take_arrays_and_instance_options_apply_as_to_a_tables_columns():
    from pipeline.launch.instance_options import InstanceOptions
    from pipeline.launch.record_checks import plan_for_columns

    image = TableInfo({"key": "INTEGER", "image": "ARRAY<FLOAT>"})
    assert plan_for_columns(FLAT, "parquet", image, None, "key", (), LAKE).decoding == "parquet"
    columns = TableInfo({"key": "INTEGER", "a": "FLOAT", "b": "INTEGER", "label": "STRING", "image": "STRING"})
    array = InstanceOptions(excluded=("label", "image"), instance_type="array")
    plan = plan_for_columns(
        ModelSignature(ModelFormat.SAVED_MODEL, (TensorSpec("x", "float32", (2,)),), (SCORE,), "gs://b/m"),
        "parquet",
        columns,
        None,
        "key",
        (),
        LAKE,
        array,
    )
    assert plan.feeding.array_fields == ("a", "b") and plan.columns == ("key", "a", "b")
    vertex = InstanceOptions(fields=("age", "weight"), output_shape="vertex")
    both = TableInfo({"age": "FLOAT", "weight": "FLOAT", "colour": "STRING"})
    plan = plan_for_columns(NAMED, "avro", both, None, "key", (), LAKE, vertex)
    assert plan.rows.shape == "vertex" and plan.feeding.key_kind == KEY_POSITION
    excluded = InstanceOptions(excluded=("colour",))
    plan = plan_for_columns(NAMED, "avro", both, None, "key", (), LAKE, excluded)
    assert plan.feeding.included_fields == ("colour",)  # unkeyed rows get their excluded fields back, as in Vertex AI


def test_file_columns_follow_vertex_ais_key_field_with_its_shape():
    """As for tables: a --key_field given names a column of every row (refused where the files have none);
    not given, a column named like it is one more field of the instance, rows keyed by position."""
    from pipeline.launch.record_checks import plan_for_columns

    keyless = TableInfo({"age": "FLOAT", "weight": "FLOAT"})
    assert launch_error(plan_for_columns, NAMED, "parquet", keyless, None, "id", (), LAKE, KEYED_VERTEX) == (
        f"--key_field=id: {LAKE} has no field id; Vertex AI's keyField names a field of every record (leave "
        "--key_field out to write each instance instead)"
    )
    keyed = TableInfo({"key": "INTEGER", "age": "INTEGER", "weight": "FLOAT"})
    plan = plan_for_columns(NAMED, "parquet", keyed, None, "key", (), LAKE, VERTEX_OPTIONS)
    assert (plan.feeding.key_kind, plan.rows.vertex.keyed) == (KEY_POSITION, False)
    assert [(field["name"], field["type"]) for field in plan.rows.schema()["fields"]] == [
        ("key", "INTEGER"),
        ("age", "INTEGER"),
        ("weight", "FLOAT"),
        ("prediction", "STRING"),
    ]
    assert plan.columns == ("age", "weight", "key")
    given = plan_for_columns(NAMED, "parquet", keyed, None, "key", (), LAKE, KEYED_VERTEX)
    assert (given.feeding.key_kind, given.rows.vertex.keyed, given.columns) == (KEY_INT, True, ("key", "age", "weight"))


def test_the_2017_samples_columns_in_a_file_read_as_its_lines():
    from pipeline.data.decoders import COLUMNS_KEY_VALUES
    from pipeline.launch.record_checks import plan_for_columns

    first = column_batch([{"key": 7, "image": ",".join(["0.5"] * WIDTH)}])
    seed = TableInfo({"key": "INTEGER", "image": "STRING"}, first_row=first.row(0))
    plan = plan_for_columns(FLAT, "parquet", seed, first, "key", (), LAKE)
    assert (plan.decoding, plan.columns) == (COLUMNS_KEY_VALUES, ("key", "image"))
