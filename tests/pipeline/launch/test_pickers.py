"""The Console form's kind-specific pickers, folded into --input and --output (and --source, --sink)."""

from __future__ import annotations

import types

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.parameters import BY_NAME
from pipeline.launch.pickers import fold_pickers

FILES = "gs://my-bucket/in/images*.txt"
TABLE = "my-project:mnist.images"
SUBSCRIPTION = "projects/my-project/subscriptions/images"
TOPIC = "projects/my-project/topics/predictions"


def params(**given):
    """Every template parameter, None unless given: what the launch folds pickers into."""
    unknown = set(given) - set(BY_NAME)
    assert not unknown, unknown
    return types.SimpleNamespace(**{name: given.get(name) for name in BY_NAME})


def folded(**given) -> types.SimpleNamespace:
    namespace = params(**given)
    fold_pickers(namespace)
    return namespace


def launch_error(**given) -> str:
    with pytest.raises(LaunchError) as error:
        fold_pickers(params(**given))
    return str(error.value)


@pytest.mark.parametrize(
    ("picker", "value", "kind"),
    [
        ("input_files", FILES, "text"),
        ("input_table", TABLE, "bigquery"),
        ("input_subscription", SUBSCRIPTION, "pubsub"),
    ],
)
def test_an_input_picker_gives_the_input_and_its_kind(picker, value, kind):
    result = folded(**{picker: value})
    assert (result.input, result.source) == (value, kind)
    assert getattr(result, picker) == value
    assert (result.output, result.sink) == (None, None)


@pytest.mark.parametrize(
    ("picker", "value", "kind"),
    [
        ("output_files", "gs://my-bucket/out/p", "text"),
        ("output_table", TABLE, "bigquery"),
        ("output_topic", TOPIC, "pubsub"),
    ],
)
def test_an_output_picker_gives_the_output_and_its_kind(picker, value, kind):
    result = folded(**{picker: value})
    assert (result.output, result.sink) == (value, kind)
    assert (result.input, result.source) == (None, None)


def test_a_kind_already_given_is_kept():
    result = folded(input_table=TABLE, source="bq", output_files="gs://my-bucket/out/p", sink="bigquery")
    assert (result.input, result.source, result.output, result.sink) == (
        TABLE,
        "bq",
        "gs://my-bucket/out/p",
        "bigquery",
    )


def test_pickers_values_are_trimmed():
    result = folded(input_files=f"  {FILES} ", output_topic=f"{TOPIC}\n")
    assert (result.input, result.output) == (FILES, TOPIC)


def test_the_generic_flag_alone_is_kept_and_says_no_kind():
    result = folded(input=f" {FILES}", output=TABLE)
    assert (result.input, result.source, result.output, result.sink) == (FILES, None, TABLE, None)


def test_the_same_place_given_by_the_flag_and_the_picker_is_fine():
    result = folded(input=FILES, input_files=f"{FILES} ", output=TABLE, output_table=TABLE)
    assert (result.input, result.source, result.output, result.sink) == (FILES, "text", TABLE, "bigquery")


def test_the_same_place_given_by_two_pickers_says_no_kind():
    """Two pickers of different kinds agree on the place but not on its kind, so neither kind is taken."""
    result = folded(output_files=TABLE, output_table=TABLE)
    assert (result.output, result.sink) == (TABLE, None)


@pytest.mark.parametrize(
    ("given", "flags"),
    [
        ({"input": FILES, "input_table": TABLE}, "--input, --input_table"),
        ({"input_table": TABLE, "input_files": FILES}, "--input_files, --input_table"),
        ({"input": FILES, "input_files": "gs://my-bucket/other.txt"}, "--input, --input_files"),
        ({"output": "gs://my-bucket/out/p", "output_topic": TOPIC}, "--output, --output_topic"),
        (
            {"output_files": "gs://my-bucket/out/p", "output_table": TABLE, "output_topic": TOPIC},
            "--output_files, --output_table, --output_topic",
        ),
    ],
)
def test_different_places_are_a_launch_error_naming_the_flags(given, flags):
    assert launch_error(**given) == f"{flags} name different places; give one of them"


def test_nothing_given_leaves_everything_alone():
    untouched = params(source="bigquery", sink="text", query="SELECT 1")
    expected = dict(vars(untouched))
    fold_pickers(untouched)
    assert vars(untouched) == expected


def test_blank_values_count_as_not_given():
    result = folded(input="  ", input_files=FILES, output_table="")
    assert (result.input, result.source, result.output, result.sink) == (FILES, "text", None, None)


def test_a_blank_picker_counts_as_not_given_like_a_blank_flag():
    result = folded(input=FILES, input_files="  ")
    assert (result.input, result.source) == (FILES, None)
    alone = folded(input_table=" ")
    assert (alone.input, alone.source) == (None, None)
