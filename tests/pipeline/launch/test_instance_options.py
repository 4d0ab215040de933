"""Vertex AI's instance options (instance_fields, excluded_fields, instance_type) and the output shape,
read from the parameters and applied to how records feed the model, each mistake one line."""

from __future__ import annotations

import types

import pytest

from pipeline.data.instances import KEY_INT, KEY_POSITION, KEY_STR, KEY_STR_OR_POSITION, Feeding
from pipeline.data.rows import ROWS, VERTEX
from pipeline.errors import LaunchError, ModelError
from pipeline.launch.instance_options import (
    ARRAY,
    AS_NAMED,
    InstanceOptions,
    check_vertex_key,
    instance_options,
    keys_by_field,
    refuse_for,
    refuses_existing_tables,
    shape_feeding,
    with_default_type,
)
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec

SCORES = TensorSpec("scores", "float32", (3,))
BILL = TensorSpec("bill", "float32", ())
MASS = TensorSpec("mass", "float32", ())
VALUES = TensorSpec("values", "float32", (3,))
PENGUIN_FIELDS = ["key", "bill", "mass", "island", "sex"]


def params(**given):
    names = ("instance_fields", "excluded_fields", "instance_type", "output_shape", "key_field", "vertex_error")
    values = {name: None for name in (*names, "existing_tables")}
    return types.SimpleNamespace(**{**values, **given})


def signature(*inputs: TensorSpec) -> ModelSignature:
    return ModelSignature(ModelFormat.SAVED_MODEL, inputs, (SCORES,), "gs://b/model")


def feeding(*inputs: TensorSpec, key_kind: str = KEY_INT, included: tuple[str, ...] = ()) -> Feeding:
    return Feeding(inputs, "key", key_kind, included_fields=included)


def shaped(options: InstanceOptions, inputs, record_fields, key_kind=KEY_INT, included=(), ordered=True) -> Feeding:
    return shape_feeding(
        feeding(*inputs, key_kind=key_kind, included=included), options, signature(*inputs), record_fields, ordered
    )


def model_error(options: InstanceOptions, inputs, record_fields, **kwargs) -> str:
    with pytest.raises(ModelError) as error:
        shaped(options, inputs, record_fields, **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ instance_options


def test_no_options_given_are_the_template_as_it_always_was():
    options = instance_options(params())
    assert options == AS_NAMED == InstanceOptions((), (), "", ROWS)
    assert (options.given, options.key_given, options.error_status, options.vertex) == (False, False, False, False)


def test_field_lists_are_split_on_commas_and_trimmed():
    options = instance_options(params(instance_fields=" bill, mass ,,", output_shape="vertex"))
    assert options == InstanceOptions(("bill", "mass"), (), "", VERTEX)
    assert instance_options(params(excluded_fields="island,sex")).excluded == ("island", "sex")


def test_instance_type_and_output_shape_are_case_and_space_insensitive():
    options = instance_options(params(instance_type=" Array ", output_shape="VERTEX"))
    assert (options.instance_type, options.output_shape) == (ARRAY, VERTEX)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"instance_fields": "bill"}, True),
        ({"excluded_fields": "island"}, True),
        ({"instance_type": "array"}, True),
        ({"instance_type": "object"}, False),
        ({"output_shape": "vertex"}, False),  # the output's shape alone does not touch the feeding
    ],
)
def test_options_are_given_when_they_change_what_is_fed(given, expected):
    assert instance_options(params(**given)).given is expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"instance_type": "matrix"}, "--instance_type=matrix: must be object or array"),
        ({"output_shape": "Table"}, "--output_shape=Table: must be rows or vertex"),
        ({"vertex_error": "name"}, "--vertex_error=name: must be code or status"),
        (
            {"instance_fields": "bill", "excluded_fields": "sex"},
            "--instance_fields and --excluded_fields are both set; give one of them, as in Vertex AI",
        ),
    ],
)
def test_combinations_vertex_ai_refuses_are_one_line_launch_errors(given, message):
    with pytest.raises(LaunchError) as error:
        instance_options(params(**given))
    assert str(error.value) == message


def test_a_key_field_given_is_told_from_its_default():
    """Vertex AI's keyField is set or not: the parameter's default `key` must not count as set."""
    assert instance_options(params(key_field="id")).key_given is True
    assert instance_options(params(key_field="key")).key_given is True
    assert instance_options(params()).key_given is False


def test_the_error_form_is_googles_status_code_unless_status_is_asked_for():
    assert instance_options(params()).error_status is False
    assert instance_options(params(vertex_error=" Status ")).error_status is True
    assert instance_options(params(vertex_error="code")).error_status is False


@pytest.mark.parametrize(
    ("shape", "existing", "refused"),
    [
        ("vertex", None, True),  # Vertex AI writes new tables only
        ("vertex", "replace", False),
        ("rows", None, False),  # the template has always replaced its tables
        ("rows", "refuse", True),
    ],
)
def test_existing_tables_are_refused_with_vertex_ais_shape_unless_replace_is_asked_for(shape, existing, refused):
    given = params(output_shape=shape, existing_tables=existing)
    assert refuses_existing_tables(given, instance_options(given)) is refused


def test_an_unknown_existing_tables_value_is_one_line():
    given = params(existing_tables="append")
    with pytest.raises(LaunchError, match=r"^--existing_tables=append: must be refuse or replace$"):
        refuses_existing_tables(given, instance_options(given))


# ------------------------------------------------------------------ Vertex AI's defaults


def test_vertex_ais_default_instance_type_is_an_array_for_csv_and_table_rows_only():
    vertex = instance_options(params(output_shape="vertex"))
    assert with_default_type(vertex, True) == InstanceOptions(instance_type=ARRAY, output_shape=VERTEX, defaulted=True)
    assert with_default_type(vertex, False) is vertex  # JSON Lines: each line's own form
    rows = instance_options(params())
    assert with_default_type(rows, True) is rows  # the template's rows keep objects
    given = instance_options(params(output_shape="vertex", instance_type="object"))
    assert with_default_type(given, True) is given


def test_a_defaulted_array_that_cannot_feed_the_model_says_how_to_feed_fields_by_name():
    options = with_default_type(instance_options(params(output_shape="vertex")), True)
    assert model_error(options, (BILL, MASS), PENGUIN_FIELDS, key_kind=KEY_POSITION) == (
        "--instance_type=array (Vertex AI's default for CSV and BigQuery rows; give --instance_type=object to feed "
        "fields by name) feeds one array to a model with one input of one dimension; gs://b/model takes bill "
        "float32 (None,), mass float32 (None,)"
    )


def test_vertex_ai_keys_records_by_a_field_only_where_the_key_field_is_given_or_the_model_takes_it():
    vertex = instance_options(params(output_shape="vertex"))
    assert keys_by_field(vertex, signature(BILL), "key") is False
    assert keys_by_field(instance_options(params(output_shape="vertex", key_field="id")), signature(BILL), "id")
    key = TensorSpec("key", "int64", ())
    assert keys_by_field(vertex, signature(BILL, key), "key") is True  # fed to the model, as Vertex AI would
    assert keys_by_field(instance_options(params()), signature(BILL), "key") is True  # the template's rows


def test_a_key_field_given_that_the_records_lack_is_refused_with_vertex_ais_shape():
    options = instance_options(params(output_shape="vertex", key_field="id"))
    with pytest.raises(ModelError) as error:
        check_vertex_key(options, "id", False, "--input=in.jsonl: the first record")
    assert str(error.value) == (
        "--key_field=id: --input=in.jsonl: the first record has no field id; Vertex AI's keyField names a field of "
        "every record (leave --key_field out to write each instance instead)"
    )
    check_vertex_key(options, "id", None, "messages")  # unknown at launch
    check_vertex_key(instance_options(params(key_field="id")), "id", False, "rows")  # the template's rows


def test_excluded_fields_are_attached_where_no_key_field_is_given_even_if_the_model_takes_the_key():
    """Vertex AI attaches excluded fields "if key_field is not specified", whatever the records hold."""
    options = instance_options(params(output_shape="vertex", excluded_fields="island"))
    assert shaped(options, (BILL, MASS), PENGUIN_FIELDS, key_kind=KEY_INT).included_fields == ("island",)
    keyed = instance_options(params(output_shape="vertex", excluded_fields="island", key_field="key"))
    assert shaped(keyed, (BILL, MASS), PENGUIN_FIELDS, key_kind=KEY_INT).included_fields == ()


def test_an_array_of_records_keyed_by_position_takes_a_field_named_key_too():
    """Without a key field, Vertex AI's array holds every column, one named `key` included."""
    options = InstanceOptions(instance_type=ARRAY)
    columns = ["bill", "key", "mass"]
    assert shaped(options, (VALUES,), columns, key_kind=KEY_POSITION).array_fields == ("bill", "key", "mass")


# ------------------------------------------------------------------ refuse_for


@pytest.mark.parametrize(
    "given", [{"instance_fields": "bill"}, {"excluded_fields": "island"}, {"instance_type": "array"}]
)
def test_records_without_fields_refuse_every_instance_option(given):
    with pytest.raises(ModelError) as error:
        refuse_for(instance_options(params(**given)), "TFRecord files")
    assert str(error.value) == (
        "--instance_fields, --excluded_fields and --instance_type apply to records with fields (JSON objects, CSV "
        "rows, BigQuery rows), not to TFRecord files"
    )


def test_records_without_fields_take_no_options_and_any_output_shape():
    refuse_for(AS_NAMED, "TFRecord files")
    refuse_for(instance_options(params(output_shape="vertex", instance_type="object")), "key:v0,v1,... lines")


# ------------------------------------------------------------------ shape_feeding: objects


def test_without_options_the_feeding_is_unchanged():
    named = feeding(BILL, MASS)
    assert shape_feeding(named, AS_NAMED, signature(BILL, MASS), PENGUIN_FIELDS) is named


def test_instance_fields_naming_every_input_keep_the_feeding():
    options = InstanceOptions(fields=("bill", "mass"))
    assert shaped(options, (BILL, MASS), PENGUIN_FIELDS) == feeding(BILL, MASS)


def test_instance_fields_that_leave_out_an_input_are_refused():
    assert model_error(InstanceOptions(fields=("bill", "island")), (BILL, MASS), PENGUIN_FIELDS) == (
        "--instance_fields leaves out the model's input(s) mass; a model is fed every input it takes "
        "(it takes bill, mass)"
    )


def test_instance_fields_the_records_do_not_have_are_refused():
    assert model_error(InstanceOptions(fields=("bill", "mass", "beak", "age")), (BILL, MASS), PENGUIN_FIELDS) == (
        "--instance_fields: the records have no field beak, age"
    )


def test_instance_fields_are_not_checked_against_records_whose_fields_are_unknown():
    options = InstanceOptions(fields=("bill", "mass", "beak"))
    assert shaped(options, (BILL, MASS), None) == feeding(BILL, MASS)


def test_excluded_fields_that_exclude_an_input_are_refused():
    assert model_error(InstanceOptions(excluded=("sex", "mass")), (BILL, MASS), PENGUIN_FIELDS) == (
        "--excluded_fields excludes the model's input(s) mass; a model is fed every input it takes"
    )


@pytest.mark.parametrize("key_kind", [KEY_INT, KEY_STR, KEY_STR_OR_POSITION])
def test_excluded_fields_of_keyed_records_are_not_copied_to_the_output(key_kind):
    options = InstanceOptions(excluded=("island", "sex"))
    assert shaped(options, (BILL, MASS), PENGUIN_FIELDS, key_kind=key_kind).included_fields == ()


def test_excluded_fields_of_records_without_a_key_are_copied_to_the_output_after_the_included_ones():
    """As Vertex AI does: with no key to join on, the fields not fed come back beside the prediction."""
    options = InstanceOptions(excluded=("island", "sex"))
    result = shaped(options, (BILL, MASS), ["bill", "mass", "island", "sex"], key_kind=KEY_POSITION, included=("sex",))
    assert result == feeding(BILL, MASS, key_kind=KEY_POSITION, included=("sex", "island"))


def test_only_excluded_fields_the_records_have_are_copied():
    options = InstanceOptions(excluded=("island", "colour"))
    result = shaped(options, (BILL, MASS), ["bill", "mass", "island"], key_kind=KEY_POSITION)
    assert result.included_fields == ("island",)


def test_every_excluded_field_is_copied_where_the_records_fields_are_unknown():
    options = InstanceOptions(excluded=("island", "colour"))
    assert shaped(options, (BILL, MASS), None, key_kind=KEY_POSITION).included_fields == ("island", "colour")


# ------------------------------------------------------------------ shape_feeding: arrays


def test_an_array_instance_takes_the_instance_fields_in_their_order():
    options = InstanceOptions(fields=("mass", "bill", "sex"), instance_type=ARRAY)
    result = shaped(options, (VALUES,), PENGUIN_FIELDS)
    assert result == Feeding((VALUES,), "key", KEY_INT, array_fields=("mass", "bill", "sex"))
    assert result.field_names == ("mass", "bill", "sex")


def test_an_array_instance_of_a_json_object_takes_the_instance_fields():
    options = InstanceOptions(fields=("mass", "bill", "sex"), instance_type=ARRAY)
    assert shaped(options, (VALUES,), PENGUIN_FIELDS, ordered=False).array_fields == ("mass", "bill", "sex")


def test_array_instance_fields_the_records_do_not_have_are_refused():
    options = InstanceOptions(fields=("mass", "bill", "beak"), instance_type=ARRAY)
    assert model_error(options, (VALUES,), PENGUIN_FIELDS) == "--instance_fields: the records have no field beak"


def test_an_array_instance_of_ordered_fields_is_every_field_but_the_key_and_the_excluded_in_their_order():
    """A CSV header's or a table's order, as Vertex AI takes it."""
    options = InstanceOptions(excluded=("island", "sex"), instance_type=ARRAY)
    columns = ["key", "mass", "island", "bill", "sex", "year"]
    assert shaped(options, (VALUES,), columns).array_fields == ("mass", "bill", "year")


def test_an_array_instance_without_excluded_fields_is_every_field_but_the_key():
    options = InstanceOptions(instance_type=ARRAY)
    assert shaped(options, (VALUES,), ["bill", "key", "mass", "year"]).array_fields == ("bill", "mass", "year")


def test_array_instances_of_records_without_a_key_copy_the_excluded_fields_back():
    options = InstanceOptions(excluded=("island",), instance_type=ARRAY)
    result = shaped(options, (VALUES,), ["bill", "mass", "island", "year"], key_kind=KEY_POSITION)
    assert (result.array_fields, result.included_fields) == (("bill", "mass", "year"), ("island",))


def test_an_array_instance_of_json_objects_needs_instance_fields():
    """A JSON object's keys have no order to take the array's from."""
    assert model_error(InstanceOptions(instance_type=ARRAY), (VALUES,), PENGUIN_FIELDS, ordered=False) == (
        "--instance_type=array: JSON objects need --instance_fields, the fields in the order of the array "
        "(as in Vertex AI)"
    )


def test_records_with_no_fields_known_at_launch_are_arrays_already():
    """JSON arrays and messages: each record is fed as it is, so no fields are named."""
    result = shaped(InstanceOptions(instance_type=ARRAY), (VALUES,), None)
    assert result.array_fields == ()
    assert result.field_names == ("values",)


def test_fields_that_do_not_fill_the_one_input_are_refused():
    options = InstanceOptions(fields=("bill", "mass"), instance_type=ARRAY)
    assert model_error(options, (VALUES,), PENGUIN_FIELDS) == (
        "--instance_type=array: input 'values' takes 3 values, but 2 field(s) would fill it (bill, mass)"
    )
    columns = ["key", "bill", "mass", "island", "sex"]
    assert model_error(InstanceOptions(instance_type=ARRAY), (VALUES,), columns) == (
        "--instance_type=array: input 'values' takes 3 values, but 4 field(s) would fill it (bill, mass, island, sex)"
    )


def test_an_input_of_any_width_takes_any_number_of_fields():
    options = InstanceOptions(fields=("bill", "mass"), instance_type=ARRAY)
    assert shaped(options, (TensorSpec("values", "float32", (None,)),), PENGUIN_FIELDS).array_fields == (
        "bill",
        "mass",
    )


@pytest.mark.parametrize(
    ("inputs", "takes"),
    [
        ((BILL, MASS), "bill float32 (None,), mass float32 (None,)"),
        ((TensorSpec("image", "float32", (2, 3)),), "image float32 (None, 2, 3)"),
        ((BILL,), "bill float32 (None,)"),
    ],
)
def test_array_instances_feed_only_a_model_with_one_input_of_one_dimension(inputs, takes):
    options = InstanceOptions(fields=("bill", "mass"), instance_type=ARRAY)
    assert model_error(options, inputs, PENGUIN_FIELDS) == (
        "--instance_type=array feeds one array to a model with one input of one dimension; gs://b/model takes " + takes
    )


def test_a_key_input_fed_the_keys_is_not_one_of_the_inputs_an_array_fills():
    key = TensorSpec("key", "int64", ())
    named = Feeding((VALUES,), "key", KEY_INT, key_input=key)
    options = InstanceOptions(fields=("bill", "mass", "sex"), instance_type=ARRAY)
    result = shape_feeding(named, options, signature(VALUES, key), PENGUIN_FIELDS)
    assert (result.key_input, result.array_fields) == (key, ("bill", "mass", "sex"))
