"""What a parameter is (its flag, its regexes, options and triggers in each spec) and the patterns the
Dataflow form checks values against before a launch."""

from __future__ import annotations

import re

import pytest

from pipeline.launch.parameters.base import (
    BATCH,
    FIELD_LIST,
    GCS_PATH,
    GCS_PATH_OR_TABLE,
    GCS_PATH_TABLE_OR_TOPIC,
    KIND_ALIASES,
    KIND_PATTERN,
    POSITIVE_INTEGER,
    SECONDS,
    SIGNATURE_NAME,
    STREAMING,
    SUBSCRIPTION,
    TABLE_SPEC,
    TOPIC,
    EnumOption,
    Parameter,
)

KIND = Parameter(
    name="source",
    label="Kind",
    help="Where records come from.",
    param_type="ENUM",
    group="Input",
    regexes=(KIND_PATTERN,),
    enum_options=(
        EnumOption("text", "Files", "files", (BATCH,)),
        EnumOption("bigquery", "Table", "a table", (BATCH,)),
        EnumOption("pubsub", "Subscription", "messages", (STREAMING,)),
    ),
    aliases=KIND_ALIASES,
    streaming_regexes=(r"^pubsub$",),
)


def child(*triggers: str) -> Parameter:
    return Parameter(
        "query", "Query", "A query.", "TEXT", "Input", parent_name="source", parent_trigger_values=triggers
    )


def test_the_flag_is_the_name_with_two_dashes():
    assert child().flag == "--query"
    assert KIND.flag == "--source"


def test_streaming_regexes_replace_the_regexes_in_the_streaming_spec_only():
    assert KIND.regexes_for(BATCH) == (KIND_PATTERN,)
    assert KIND.regexes_for(STREAMING) == (r"^pubsub$",)


def test_without_streaming_regexes_both_specs_take_the_same_regexes():
    plain = Parameter("key_field", "Key", "The key.", "TEXT", "Input", regexes=(FIELD_LIST,))
    assert plain.regexes_for(BATCH) == plain.regexes_for(STREAMING) == (FIELD_LIST,)
    nothing = Parameter("x", "X", "x", "TEXT", "Input", regexes=(FIELD_LIST,), streaming_regexes=())
    assert nothing.regexes_for(STREAMING) == ()


def test_options_are_those_of_the_spec():
    assert [option.value for option in KIND.options_for(BATCH)] == ["text", "bigquery"]
    assert [option.value for option in KIND.options_for(STREAMING)] == ["pubsub"]
    assert child().options_for(BATCH) == ()


def test_an_option_belongs_to_both_specs_unless_told():
    assert EnumOption("csv", "CSV", "rows").modes == (BATCH, STREAMING)


def test_triggers_are_the_parent_values_the_spec_offers_aliases_included():
    files = child("text", "cs", "pubsub")
    assert files.triggers_for(BATCH, KIND) == ("text", "cs")
    assert files.triggers_for(STREAMING, KIND) == ("pubsub",)
    assert child("bigquery", "bq").triggers_for(STREAMING, KIND) == ()


def test_an_alias_triggers_only_where_its_value_is_offered():
    assert KIND_ALIASES == {"cs": "text", "bq": "bigquery"}
    assert child("bq").triggers_for(BATCH, KIND) == ("bq",)
    assert child("cs", "bq").triggers_for(STREAMING, KIND) == ()


def test_triggers_keep_their_order_and_drop_values_no_spec_offers():
    assert child("bq", "nonsense", "text").triggers_for(BATCH, KIND) == ("bq", "text")


def test_without_a_parent_or_its_options_the_triggers_are_as_given():
    free_text = Parameter("input", "Input", "Where.", "TEXT", "Input")
    assert child("text", "nonsense").triggers_for(BATCH, None) == ("text", "nonsense")
    assert child("text", "nonsense").triggers_for(STREAMING, free_text) == ("text", "nonsense")


# ------------------------------------------------------------------ patterns, as the form matches them


def accepts(pattern: str, value: str) -> bool:
    """Anchored, so a search (as a form may match) and a full match agree."""
    found = re.search(pattern, value) is not None
    assert found is (re.fullmatch(pattern, value) is not None), (pattern, value)
    return found


PATTERNS = {
    "GCS_PATH": (
        GCS_PATH,
        ["gs://abc", "gs://my-bucket", "gs://my-bucket/", "gs://my.bucket_1/in/images*.txt.gz", "gs://b-1/a b/c"],
        ["gs://", "gs://ab", "gs://My-Bucket/x", "gs://-bucket/x", "gs://bucket-/x", "s3://bucket/x", "/local/x", ""],
    ),
    "TABLE_SPEC": (
        TABLE_SPEC,
        ["mnist.images", "my-project:mnist.images", "my-project.mnist.images", "example.com:p:d.t", "d.t$20240101"],
        ["images", "mnist.", ".images", "mnist.my images", "gs://b/mnist.images", "p:d:", ""],
    ),
    "SUBSCRIPTION": (
        SUBSCRIPTION,
        ["projects/my-project/subscriptions/images", "projects/my-project/subscriptions/mnist-images.v2~x+%2"],
        [
            "projects/my-project/subscriptions/ab",
            "projects/p/subscriptions/images",
            "projects/My-project/subscriptions/images",
            "projects/my-project/subscriptions/1images",
            "projects/my-project/topics/images",
            "my-project/subscriptions/images",
        ],
    ),
    "TOPIC": (
        TOPIC,
        ["projects/my-project/topics/predictions", "projects/example.com:my-project/topics/p_1"],
        [
            "projects/my-project/topics/ab",
            "projects/my-project/subscriptions/predictions",
            "projects/my-project-/topics/predictions",
            "projects/my-project/topics/",
        ],
    ),
    "FIELD_LIST": (
        FIELD_LIST,
        ["species", "island,sex", "a_1,b", "_private", "A,B9"],
        ["", "a, b", "a,,b", ",a", "a,", "1st", "a.b", "a-b"],
    ),
    "SIGNATURE_NAME": (
        SIGNATURE_NAME,
        ["serving_default", "predict", "serving.v2-preprocessed", "_x"],
        ["", "2nd", "-predict", "with space", "a/b"],
    ),
    "POSITIVE_INTEGER": (POSITIVE_INTEGER, ["1", "60", "8192"], ["0", "01", "-1", "1.5", "ten", " 1", ""]),
    "SECONDS": (SECONDS, ["0", "0.5", "1.", ".25", "60"], ["", ".", "-1", "1e3", "1.2.3", "soon", "0.5s"]),
    "KIND_PATTERN": (KIND_PATTERN, ["text", "bigquery", "pubsub", "cs", "bq"], ["TEXT", "parquet", "text ", ""]),
}


@pytest.mark.parametrize("name", PATTERNS)
def test_each_pattern_accepts_what_a_user_means(name):
    pattern, accepted, _ = PATTERNS[name]
    assert [value for value in accepted if not accepts(pattern, value)] == []


@pytest.mark.parametrize("name", PATTERNS)
def test_each_pattern_refuses_obvious_mistakes(name):
    pattern, _, refused = PATTERNS[name]
    assert [value for value in refused if accepts(pattern, value)] == []


def test_combined_patterns_accept_each_kind_of_place():
    assert all(accepts(GCS_PATH_OR_TABLE, value) for value in ("gs://my-bucket/out", "mnist.predict"))
    assert not accepts(GCS_PATH_OR_TABLE, "projects/my-project/topics/predictions")
    for value in ("gs://my-bucket/out", "mnist.predict", "projects/my-project/topics/predictions"):
        assert accepts(GCS_PATH_TABLE_OR_TOPIC, value), value
    assert not accepts(GCS_PATH_TABLE_OR_TOPIC, "projects/my-project/subscriptions/predictions")
