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
    OBJECT,
    InstanceOptions,
    instance_options,
    refuse_for,
    shape_feeding,
)
from pipeline.model.files import ModelFormat
from pipeline.model.signatures import ModelSignature, TensorSpec

SCORES = TensorSpec("scores", "float32", (3,))
BILL = TensorSpec("bill", "float32", ())
MASS = TensorSpec("mass", "float32", ())
VALUES = TensorSpec("values", "float32", (3,))
PENGUIN_FIELDS = ["key", "bill", "mass", "island", "sex"]


def params(**given):
    values = {"instance_fields": None, "excluded_fields": None, "instance_type": None, "output_shape": None}
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
    assert options == AS_NAMED == InstanceOptions((), (), OBJECT, ROWS)
    assert options.given is False


def test_field_lists_are_split_on_commas_and_trimmed():
    options = instance_options(params(instance_fields=" bill, mass ,,", output_shape="vertex"))
    assert options == InstanceOptions(("bill", "mass"), (), OBJECT, VERTEX)
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
