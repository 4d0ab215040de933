"""metadata.json, the pipeline options and the README's table describe the same parameters."""

from __future__ import annotations

import argparse
import json
import re

import jsonschema
import pytest

from pipeline.launch.options import PARAMETERS, BatchPredictionOptions
from scripts import template_metadata
from tests.conftest import ROOT

METADATA = json.loads((ROOT / "metadata.json").read_text())
SCHEMA = json.loads((ROOT / "tests/schemas/flex-template-metadata.schema.json").read_text())
BY_NAME = {entry["name"]: entry for entry in METADATA["parameters"]}

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
    "format": ["auto", "key_values", "jsonl", "csv", "tfrecord", "files"],
    "key_field": ["key", "id", "row_id"],
    "included_fields": ["species", "island,sex", "a_1,b"],
}
REFUSED = {
    "source": ["parquet", "TEXT ", ""],
    "input": ["s3://bucket/x", "gs://", "not a table", "https://example.com/x"],
    "sink": ["csv", ""],
    "output": ["s3://bucket/x", "gs://", "no spaces.allowed here"],
    "model": ["s3://bucket/model", "/local/only", "gs://"],
    "dead_letter": ["ftp://host/x"],
    "batch_size": ["0", "-5", "ten", "1.5", ""],
    "format": ["parquet", "JSONL ", ""],
    "key_field": ["", "two words", "1st"],
    "included_fields": ["a,,b", "a, b", ",a"],
}


def option_names() -> set[str]:
    parser = argparse.ArgumentParser()
    BatchPredictionOptions._add_argparse_args(parser)
    return {action.dest for action in parser._actions if action.dest != "help"}


def readme_table_names() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index(template_metadata.TABLE_BEGIN) : readme.index(template_metadata.TABLE_END)]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))


def test_metadata_is_valid_flex_template_metadata():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(METADATA, SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_metadata_options_and_readme_name_the_same_parameters():
    names = {parameter.name for parameter in PARAMETERS}
    assert set(BY_NAME) == names
    assert option_names() == names
    assert readme_table_names() == names


def test_committed_metadata_and_readme_table_are_what_the_options_generate():
    assert (ROOT / "metadata.json").read_text() == template_metadata.metadata_json()
    readme = (ROOT / "README.md").read_text()
    assert template_metadata.readme_with_table(readme) == readme, "run `make metadata`"


def test_required_defaults_and_conditions_follow_the_options():
    for parameter in PARAMETERS:
        entry = BY_NAME[parameter.name]
        assert entry["isOptional"] is (not parameter.required)
        assert entry.get("defaultValue") == (None if parameter.default is None else str(parameter.default))
        if "parentName" in entry:
            parent = BY_NAME[entry["parentName"]]
            assert set(entry["parentTriggerValues"]) <= {option["value"] for option in parent["enumOptions"]} | set(
                next(p for p in PARAMETERS if p.name == parent["name"]).aliases
            )
    assert {entry["name"] for entry in METADATA["parameters"] if not entry["isOptional"]} == {"output", "model"}


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
