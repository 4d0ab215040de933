"""Launch-time checks of UDFs: the file and functions as given, the first records through the function before the
model deciding how records feed it, the function after the model on the first prediction row; each failure one
line."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.config import IoKind
from pipeline.data.batches import InstanceBatch, RecordBatch, ScoredBatch
from pipeline.data.decoders import BIGQUERY_ROWS
from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR_OR_POSITION
from pipeline.data.rows import RowLayout
from pipeline.data.udf import UdfCode
from pipeline.errors import LaunchError
from pipeline.launch.instance_options import ARRAY, AS_NAMED, InstanceOptions
from pipeline.launch.table_checks import TableInfo
from pipeline.launch.udf_checks import check_after_udf, first_records, plan_with_udf, read_udf
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec

ISLAND = TensorSpec("island", "string", ())
MASS = TensorSpec("body_mass_g", "float32", ())
SPECIES = TensorSpec("species", "string", ())
PENGUINS = ModelSignature(ModelFormat.SAVED_MODEL, (ISLAND, MASS), (SPECIES,), "gs://b/penguins")
SOURCE = """\
def grams(record):
    record["body_mass_g"] = record.pop("body_mass_kg") * 1000
    return record


def first_fails(record):
    return {"island": record["island"].upper(), "body_mass_g": 1.0}


def drops_all(record):
    return None


def unkeyed(record):
    return {"island": record["island"], "body_mass_g": 1.0}


def texts(record):
    return "a line"


def mixed(record):
    return [record, 7]


def finish(row):
    return dict(row, species=row["species"].upper())


def breaks(row):
    return row["nope"]


def as_is(record):
    return record
"""


def params(path: str | None = None, before: str | None = None, after: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        python_udf_gcs_path=path, python_udf_function_name=before, python_udf_output_function_name=after
    )


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(LaunchError) as raised:
        call(*args, **kwargs)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.fixture
def udf_file(tmp_path) -> Path:
    path = tmp_path / "penguins_udf.py"
    path.write_text(SOURCE)
    return path


def test_no_udf_is_none_and_a_function_without_its_file_is_refused():
    assert read_udf(params()) is None
    assert error_of(read_udf, params(before="grams")) == (
        "--python_udf_function_name names a function of a file: give the file with --python_udf_gcs_path"
    )


def test_a_file_without_a_function_named_is_refused(udf_file):
    message = error_of(read_udf, params(str(udf_file)))
    assert message.startswith(f"--python_udf_gcs_path={udf_file}: name the function to run with")


def test_the_file_and_functions_are_read_and_checked(udf_file, tmp_path):
    code = read_udf(params(f" {udf_file} ", "grams", "finish"))
    assert code is not None and (code.path, code.before, code.after) == (str(udf_file), "grams", "finish")
    assert error_of(read_udf, params(str(tmp_path / "absent.py"), "grams")).endswith("absent.py: no such file")
    assert error_of(read_udf, params(str(udf_file), "grams-2")) == (
        "--python_udf_function_name=grams-2: must be the name of a Python function, such as prepare"
    )
    assert error_of(read_udf, params(str(udf_file), "gram")).startswith(
        f"--python_udf_function_name=gram: {udf_file} has no function 'gram'; it defines as_is, breaks, drops_all,"
    )
    assert "--python_udf_output_function_name=finis:" in error_of(read_udf, params(str(udf_file), after="finis"))
    broken = tmp_path / "broken.py"
    broken.write_text("def grams(record:\n    return record\n")
    assert error_of(read_udf, params(str(broken), "grams")) == (
        f"--python_udf_gcs_path={broken}: {broken}:1: SyntaxError: '(' was never closed"
    )


def checked(*records, source: IoKind = IoKind.TEXT, record_format: str | None = "jsonl", table=None):
    batch = RecordBatch("in.jsonl", 1, [json.dumps(record).encode() for record in records]) if records else None
    return SimpleNamespace(source=source, record_format=record_format, first=batch, table=table)


def code(before: str | None = None, after: str | None = None) -> UdfCode:
    return UdfCode("penguins_udf.py", SOURCE, before, after)


def plan(before: str, given, key_field: str = "key", included=(), options: InstanceOptions = AS_NAMED):
    return plan_with_udf(code(before), PENGUINS, given, key_field, included, options)


def test_the_plan_feeds_what_the_udf_returns_so_it_can_derive_a_field_the_model_needs():
    given = checked({"key": 7, "island": "Biscoe", "body_mass_kg": 3.75, "sex": "male"})
    made = plan("grams", given, included=("sex",))
    assert made.decoding == "jsonl" and made.columns is None
    assert made.feeding.key_kind == KEY_INT and [spec.name for spec in made.feeding.inputs] == ["island", "body_mass_g"]
    assert made.rows.included == (("sex", "STRING"),)


def test_what_the_udf_returns_that_lacks_an_input_or_an_included_field_is_refused_naming_it():
    given = checked({"key": 7, "island": "Biscoe", "body_mass_kg": 3.75})
    assert error_of(plan, "as_is", given) == (
        "--python_udf_function_name=as_is: what it returns for the first record lacks the model's input(s) "
        "body_mass_g; it has body_mass_kg, which the model does not take"
    )
    assert error_of(plan, "grams", given, included=("sex",)) == (
        "--included_fields: --python_udf_function_name=grams: what it returns for the first record has no field sex"
    )
    assert error_of(plan, "grams", checked({"key": 1, "island": "Dream", "body_mass_g": 1})) == (
        "--python_udf_function_name=grams: on the record at in.jsonl:1: penguins_udf.py:2 in grams: "
        "KeyError: 'body_mass_kg'"
    )


def test_a_first_record_the_udf_raises_on_or_answers_with_a_line_is_refused():
    given = checked({"key": 1, "island": None})
    assert error_of(plan, "first_fails", given) == (
        "--python_udf_function_name=first_fails: on the record at in.jsonl:1: penguins_udf.py:7 in first_fails: "
        "AttributeError: 'NoneType' object has no attribute 'upper'"
    )
    assert "it returned list [{'key': 1}, 7]; it must return" in error_of(plan, "mixed", checked({"key": 1}))
    assert error_of(plan, "texts", checked({"key": 1})) == (
        "--python_udf_function_name=texts: on the record at in.jsonl:1: it returned str 'a line'; it must return "
        "a dict, a list, tuple or generator of dicts, or None"
    )


def test_without_a_record_to_plan_from_records_are_keyed_by_their_key_field_else_their_position():
    for given in (checked({"key": 1, "island": "Dream"}), checked(source=IoKind.PUBSUB)):
        made = plan("drops_all", given)
        assert made.feeding.key_kind == KEY_STR_OR_POSITION
    assert plan("unkeyed", checked({"key": 1, "island": "Dream"})).feeding.key_kind == KEY_POSITION


def test_a_table_rows_udf_must_keep_the_key_and_feeds_by_name():
    table = TableInfo(
        {"key": "INTEGER", "island": "STRING", "body_mass_kg": "FLOAT"},
        3,
        {"key": 1, "island": "Dream", "body_mass_kg": 3.5},
    )
    given = checked(source=IoKind.BIGQUERY, record_format=None, table=table)
    assert first_records(given).rows == [table.first_row]
    made = plan("grams", given)
    assert made.decoding == BIGQUERY_ROWS and made.columns is None  # every column read: the UDF may use any
    assert error_of(plan, "unkeyed", given) == (
        "--python_udf_function_name=unkeyed: what it returns for the first record has no key field 'key': keep the "
        "row's key (or set --key_field)"
    )


@pytest.mark.parametrize(
    ("source", "record_format", "what"),
    [
        (IoKind.TEXT, "key_values", "key_values records"),
        (IoKind.TEXT, "tfrecord", "tfrecord records"),
        (IoKind.PUBSUB, "files", "files messages"),
    ],
)
def test_records_without_fields_are_refused(source, record_format, what):
    message = error_of(plan, "grams", checked(source=source, record_format=record_format))
    assert message.startswith(f"--python_udf_function_name=grams: {what} have no fields to give a UDF")


def test_first_records_that_do_not_fit_after_the_udf_are_refused_with_the_first_reason():
    given = checked({"key": 1, "island": "Dream", "body_mass_kg": "heavy"})
    message = error_of(plan, "grams", given)
    assert message.startswith("--python_udf_function_name=grams: ") and "heavy" in message


def test_instance_options_apply_to_what_the_udf_returns():
    given = checked({"key": 1, "island": "Dream", "body_mass_kg": 3.5})
    message = error_of(plan, "grams", given, options=InstanceOptions(instance_type=ARRAY))
    assert message.startswith("--instance_type=array feeds one array to a model with one input")


def first_prediction(key: int = 3) -> ScoredBatch:
    source = RecordBatch("in.jsonl", 1, [b'{"key": 3}'])
    instances = InstanceBatch(np.array([key]), {}, source, np.array([0]))
    return ScoredBatch(instances, {"species": np.array([b"Adelie"], dtype=object)})


def test_the_after_model_function_runs_on_the_first_prediction_row():
    layout = RowLayout((SPECIES,))
    check_after_udf(code(after="finish"), layout, first_prediction(), as_table=True)
    check_after_udf(None, layout, first_prediction(), as_table=False)
    check_after_udf(code(after="breaks"), layout, None, as_table=False)  # a remote launch has no prediction
    line = SOURCE.splitlines().index('    return row["nope"]') + 1
    assert error_of(check_after_udf, code(after="breaks"), layout, first_prediction(), as_table=False) == (
        f"--python_udf_output_function_name=breaks: on the first prediction row, penguins_udf.py:{line} in breaks: "
        "KeyError: 'nope'"
    )


def test_a_udf_over_parquet_tensor_columns_plans_as_the_plain_decoder_feeds():
    import pyarrow as pa

    from pipeline.data.batches import ColumnBatch

    image = TensorSpec("image", "float32", (4, 4, 1))
    signature = ModelSignature(ModelFormat.SAVED_MODEL, (image,), (SPECIES,), "gs://b/digits")
    rows = np.arange(32, dtype=np.float32).reshape(2, 4, 4).tolist()
    table = pa.table({"key": [1, 2], "image": pa.array(rows, pa.list_(pa.list_(pa.float32())))})
    given = SimpleNamespace(
        source=IoKind.TEXT, record_format="parquet", first=ColumnBatch("a.parquet", 0, table, "key"), table=None
    )
    made = plan_with_udf(code("as_is"), signature, given, "key", (), AS_NAMED)
    assert made.decoding == "parquet" and made.feeding.key_kind == KEY_INT


FLAKY = """\
def skips_the_first(record):
    if record["key"] == 1:
        raise ValueError("no island for 1")
    return {"key": record["key"], "island": record["island"], "body_mass_g": 1.0}


def never(record):
    if record["key"] == 1:
        raise ValueError("no island for 1")
    return "a line"


def splits(record):
    for half in (1, 2):
        yield {"key": record["key"] * 10 + half, "island": record["island"], "body_mass_g": 1.0}
"""


def flaky(before: str, given):
    return plan_with_udf(UdfCode("flaky.py", FLAKY, before), PENGUINS, given, "key", (), AS_NAMED)


def test_the_launch_refuses_a_udf_only_where_none_of_the_first_records_gives_a_record():
    first_fails = checked({"key": 1, "island": "Dream"}, {"key": 2, "island": "Biscoe"})
    assert flaky("skips_the_first", first_fails).feeding.key_kind == KEY_INT  # the job dead-letters record 1
    assert error_of(flaky, "never", first_fails) == (
        "--python_udf_function_name=never: on the record at in.jsonl:1: flaky.py:9 in never: "
        "ValueError: no island for 1"
    )


def test_a_generator_udf_plans_from_the_first_record_it_yields():
    made = flaky("splits", checked({"key": 1, "island": "Dream"}))
    assert made.feeding.key_kind == KEY_INT and [spec.name for spec in made.feeding.inputs] == ["island", "body_mass_g"]
