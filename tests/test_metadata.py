"""The two template specs' metadata (batch: metadata.json, streaming: metadata-streaming.json), the
pipeline options and the README's table describe the same parameters."""

from __future__ import annotations

import argparse
import json
import re

import jsonschema
import pytest

from pipeline.launch.options import BatchPredictionOptions
from pipeline.launch.parameters import BATCH, PARAMETERS, STREAMING, parameters_for
from scripts import template_metadata
from tests.conftest import ROOT

METADATA = json.loads((ROOT / "metadata.json").read_text())
STREAMING_METADATA = json.loads((ROOT / "metadata-streaming.json").read_text())
SCHEMA = json.loads((ROOT / "tests/schemas/flex-template-metadata.schema.json").read_text())
BY_NAME = {entry["name"]: entry for entry in METADATA["parameters"]}
STREAMING_BY_NAME = {entry["name"]: entry for entry in STREAMING_METADATA["parameters"]}
SPECS = {BATCH: METADATA, STREAMING: STREAMING_METADATA}

# Values each parameter's regexes must accept and refuse (what a Console user might type).
ACCEPTED = {
    "source": ["text", "bigquery", "cs", "bq"],
    "input": ["gs://my-bucket/mnist/images.txt.gz", "gs://b-1/in/*.txt", "my-project:mnist.images", "mnist.images"],
    "query": ["SELECT key, image FROM mnist.images"],
    "sink": ["text", "bigquery"],
    "output": ["gs://my-bucket/out/predictions", "my-project:mnist.predict", "mnist.predict"],
    "model": ["gs://my-bucket/model", "gs://my-bucket/model.keras", "gs://my-bucket/legacy/export"],
    "dead_letter": ["gs://my-bucket/rejected", "mnist.rejected"],
    "batch_size": ["1", "256", "8192"],
    "format": ["auto", "key_values", "jsonl", "csv", "tfrecord", "files", "parquet", "avro"],
    "key_field": ["key", "id", "row_id"],
    "included_fields": ["species", "island,sex", "a_1,b"],
    "output_format": ["jsonl", "parquet"],
}
REFUSED = {
    "source": ["parquet", "TEXT ", ""],
    "input": ["s3://bucket/x", "gs://", "not a table", "https://example.com/x"],
    "sink": ["csv", ""],
    "output": ["s3://bucket/x", "gs://", "no spaces.allowed here"],
    "model": ["s3://bucket/model", "/local/only", "gs://"],
    "dead_letter": ["ftp://host/x"],
    "batch_size": ["0", "-5", "ten", "1.5", ""],
    "format": ["orc", "Parquet", "JSONL ", ""],
    "key_field": ["", "two words", "1st"],
    "included_fields": ["a,,b", "a, b", ",a"],
    "output_format": ["csv", "Parquet", "parquet ", ""],
}


def option_names() -> set[str]:
    parser = argparse.ArgumentParser()
    BatchPredictionOptions._add_argparse_args(parser)
    return {action.dest for action in parser._actions if action.dest != "help"}


def readme_table_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index(template_metadata.TABLE_BEGIN) : readme.index(template_metadata.TABLE_END)]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))


@pytest.mark.parametrize("mode", [BATCH, STREAMING])
def test_metadata_is_valid_flex_template_metadata(mode):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(SPECS[mode], SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert SPECS[mode]["streaming"] is (mode == STREAMING)


def test_metadata_options_and_readme_name_the_same_parameters():
    names = {parameter.name for parameter in PARAMETERS}
    assert set(BY_NAME) | set(STREAMING_BY_NAME) == names
    assert set(BY_NAME) == {parameter.name for parameter in parameters_for(BATCH)}
    assert set(STREAMING_BY_NAME) == {parameter.name for parameter in parameters_for(STREAMING)}
    # A stream reads messages, never stops for failing records, writes JSON lines per window, and adds rows to
    # its tables, new or not.
    batch_only = {"query", "input_files", "input_table", "max_failure_share", "output_format", "existing_tables"}
    assert batch_only == names - set(STREAMING_BY_NAME)
    assert {"max_batch_wait_seconds", "window_seconds", "model_poll_seconds", "input_subscription", "output_topic"} == (
        names - set(BY_NAME)
    )
    assert option_names() == names
    assert readme_table_names() == names


def test_committed_metadata_and_readme_table_are_what_the_options_generate():
    assert (ROOT / "metadata.json").read_text() == template_metadata.metadata_json(BATCH)
    assert (ROOT / "metadata-streaming.json").read_text() == template_metadata.metadata_json(STREAMING)
    readme = (ROOT / "README.md").read_text()
    assert template_metadata.readme_with_table(readme) == readme, "run `make metadata`"


@pytest.mark.parametrize("mode", [BATCH, STREAMING])
def test_required_defaults_and_conditions_follow_the_options(mode):
    by_name = {entry["name"]: entry for entry in SPECS[mode]["parameters"]}
    for parameter in parameters_for(mode):
        entry = by_name[parameter.name]
        assert entry["isOptional"] is (not parameter.required)
        default = parameter.shown_default.get(mode, parameter.default)
        assert entry.get("defaultValue") == (None if default is None else str(default))
        if "parentName" in entry:
            parent = by_name[entry["parentName"]]
            assert set(entry["parentTriggerValues"]) & {option["value"] for option in parent["enumOptions"]}
    assert {entry["name"] for entry in SPECS[mode]["parameters"] if not entry["isOptional"]} == {"model"}


STREAMING_ACCEPTED = {
    "source": ["pubsub"],
    "input": ["projects/my-project/subscriptions/images", "projects/my-project/subscriptions/mnist-images.v2"],
    "format": ["auto", "jsonl", "key_values", "files"],
    "output": ["projects/my-project/topics/predictions", "my-project:mnist.predict", "gs://my-bucket/out/p"],
    "dead_letter": ["projects/my-project/topics/rejected", "mnist.rejected", "gs://my-bucket/rejected"],
    "max_batch_wait_seconds": ["0.5", "1", "0", ".25"],
    "window_seconds": ["60", "1"],
    "model_poll_seconds": ["60", "5"],
}
STREAMING_REFUSED = {
    "source": ["text", "bigquery", ""],
    "input": ["gs://my-bucket/in.txt", "mnist.images", "projects/p/topics/in", "projects/my-project/subscriptions/ab"],
    "format": ["csv", "tfrecord"],
    "output": ["projects/my-project/subscriptions/out"],
    "max_batch_wait_seconds": ["-1", "soon", ""],
    "window_seconds": ["0", "1.5", "-60"],
}


@pytest.mark.parametrize("name", sorted(STREAMING_ACCEPTED))
def test_the_streaming_specs_regexes_accept_what_a_stream_takes(name):
    entry = STREAMING_BY_NAME[name]
    values = STREAMING_ACCEPTED[name] + ([entry["defaultValue"]] if "defaultValue" in entry else [])
    for value in values:
        for pattern in entry.get("regexes", []):
            assert re.fullmatch(pattern, value), f"{name}: {pattern!r} refuses {value!r}"


@pytest.mark.parametrize("name", sorted(STREAMING_REFUSED))
def test_the_streaming_specs_regexes_refuse_what_a_stream_cannot_take(name):
    patterns = STREAMING_BY_NAME[name]["regexes"]
    for value in STREAMING_REFUSED[name]:
        assert not all(re.fullmatch(pattern, value) for pattern in patterns), f"{name} accepts {value!r}"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_regexes_accept_sample_values_and_defaults(name):
    entry = BY_NAME[name]
    values = ACCEPTED[name] + ([entry["defaultValue"]] if "defaultValue" in entry else [])
    example = next(parameter.example for parameter in PARAMETERS if parameter.name == name)
    for value in [*values, example]:
        for pattern in entry.get("regexes", []):
            assert re.fullmatch(pattern, value), f"{name}: {pattern!r} refuses {value!r}"  # as the service matches


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_regexes_refuse_obvious_mistakes(name):
    patterns = BY_NAME[name]["regexes"]
    for value in REFUSED[name]:
        assert not all(re.search(pattern, value) for pattern in patterns), f"{name} accepts {value!r}"


def test_enum_options_are_the_canonical_kinds():
    for name in ("source", "sink"):
        assert [option["value"] for option in BY_NAME[name]["enumOptions"]] == ["text", "bigquery"]
    assert [option["value"] for option in STREAMING_BY_NAME["source"]["enumOptions"]] == ["pubsub"]
    assert [option["value"] for option in STREAMING_BY_NAME["sink"]["enumOptions"]] == ["text", "bigquery", "pubsub"]


def test_the_batch_form_preselects_files_as_the_sink_and_so_shows_their_picker():
    """The Console hides a picker until its kind is chosen: the batch form preselects text, as it does for the
    source. The command line keeps no default: without --sink, the kind is inferred (from the source, or a topic)."""
    assert BY_NAME["sink"]["defaultValue"] == "text" == BY_NAME["source"]["defaultValue"]
    assert "text" in BY_NAME["output_files"]["parentTriggerValues"]
    assert "defaultValue" not in STREAMING_BY_NAME["sink"]  # a stream's kind follows its output: no preselection
    (sink,) = [parameter for parameter in PARAMETERS if parameter.name == "sink"]
    assert sink.default is None
    assert BatchPredictionOptions([]).sink is None
