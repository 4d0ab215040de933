"""The parameters: one definition, aliases, typos caught, help for every one."""

from __future__ import annotations

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.options import canonical_kind, check_flags, help_text
from pipeline.launch.parameters import PARAMETERS


@pytest.mark.parametrize(
    ("value", "kind"), [("text", "text"), ("cs", "text"), ("BQ", "bigquery"), (" bigquery ", "bigquery")]
)
def test_source_and_sink_accept_the_seeds_aliases(value, kind):
    assert canonical_kind("source", value) == kind
    assert canonical_kind("sink", value) == kind


def test_unknown_kind_is_one_clear_line():
    with pytest.raises(LaunchError, match=r"^--sink=parquet: must be one of text, bigquery, pubsub \(or cs, bq\)$"):
        canonical_kind("sink", "parquet")


@pytest.mark.parametrize(
    ("flag", "suggestion"), [("--ouput=x", "--output"), ("--batch-size=4", "--batch_size"), ("--modle=m", "--model")]
)
def test_near_misses_of_parameters_are_refused_with_a_suggestion(flag, suggestion):
    with pytest.raises(LaunchError, match=f"did you mean {suggestion}"):
        check_flags([flag])


def test_beams_own_options_are_not_mistaken_for_typos():
    check_flags(
        ["--runner=DirectRunner", "--project=p", "--temp_location=gs://b/t", "--region=us-central1", "--job_name=j"]
    )


def test_every_parameter_has_a_label_help_and_type():
    text = help_text("main.py")
    for parameter in PARAMETERS:
        assert parameter.label and parameter.help and parameter.param_type
        assert f"--{parameter.name}" in text
