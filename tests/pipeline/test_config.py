"""Source and sink kinds: the enum the job uses is the very strings parameters and metadata carry."""

from __future__ import annotations

import json
import re

import orjson
import pytest

from pipeline.config import IoKind
from pipeline.errors import LaunchError
from pipeline.launch.options import canonical_kind
from pipeline.launch.parameters import BATCH, PARAMETERS, STREAMING
from pipeline.launch.parameters.base import KIND_PATTERN, KINDS
from tests.conftest import ROOT


def test_io_kinds_compare_equal_to_their_parameter_strings():
    assert IoKind.TEXT == "text"
    assert IoKind.BIGQUERY == "bigquery"
    assert IoKind.TEXT != "bigquery"
    assert {kind.value for kind in IoKind} == {"text", "bigquery", "pubsub"}


def test_io_kinds_print_and_serialise_as_plain_strings():
    """Kinds end up in log lines, summaries and JSON: they must read as 'text', not 'IoKind.TEXT'."""
    assert str(IoKind.BIGQUERY) == "bigquery"
    assert f"{IoKind.TEXT}" == "text"
    assert json.dumps({"sink": IoKind.BIGQUERY}) == '{"sink": "bigquery"}'
    assert orjson.loads(orjson.dumps({"source": IoKind.TEXT})) == {"source": "text"}


def test_io_kinds_and_strings_are_interchangeable_as_keys():
    by_kind = {IoKind.TEXT: "files", IoKind.BIGQUERY: "table"}
    assert by_kind["text"] == "files"
    assert by_kind["bigquery"] == "table"
    assert IoKind("text") is IoKind.TEXT


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("text", IoKind.TEXT),
        ("bigquery", IoKind.BIGQUERY),
        ("cs", IoKind.TEXT),  # the 2017 sample's names
        ("bq", IoKind.BIGQUERY),
        ("  BQ ", IoKind.BIGQUERY),
        ("Text", IoKind.TEXT),
    ],
)
def test_canonical_kind_maps_every_name_and_alias_to_an_io_kind(value, kind):
    result = canonical_kind("source", value)
    assert result is kind
    assert isinstance(result, IoKind)


def test_every_accepted_name_maps_to_an_io_kind():
    assert set(KINDS) == {"text", "bigquery", "pubsub", "cs", "bq"}
    assert all(isinstance(canonical_kind("sink", name), IoKind) for name in KINDS)


@pytest.mark.parametrize("value", ["gcs", "files", "", "big query"])
def test_canonical_kind_refuses_other_names_naming_the_parameter(value):
    with pytest.raises(LaunchError, match=rf"^--sink={value}: must be one of text, bigquery, pubsub \(or cs, bq\)$"):
        canonical_kind("sink", value)


def test_source_and_sink_parameters_offer_exactly_the_io_kinds():
    """The metadata's enum options and default are IoKind values, and the regex accepts every alias."""
    for name in ("source", "sink"):
        (parameter,) = [parameter for parameter in PARAMETERS if parameter.name == name]
        assert [option.value for option in parameter.enum_options] == [IoKind.TEXT, IoKind.BIGQUERY, IoKind.PUBSUB]
        assert parameter.aliases == {"cs": "text", "bq": "bigquery"}
        assert parameter.regexes == (KIND_PATTERN,)
        assert [option.value for option in parameter.options_for(STREAMING)][-1] == IoKind.PUBSUB
    (source,) = [parameter for parameter in PARAMETERS if parameter.name == "source"]
    assert source.default is None  # inferred from --input: a subscription is read as a stream
    assert source.shown_default == {BATCH: IoKind.TEXT, STREAMING: IoKind.PUBSUB}


def test_parameters_triggered_by_a_kind_name_it_and_its_alias():
    triggers = {parameter.name: parameter.parent_trigger_values for parameter in PARAMETERS if parameter.parent_name}
    assert triggers["format"] == ("text", "cs", "pubsub")
    assert triggers["query"] == ("bigquery", "bq")
    assert {canonical_kind("source", value) for value in triggers["format"]} == {IoKind.TEXT, IoKind.PUBSUB}
    assert {canonical_kind("source", value) for value in triggers["query"]} == {IoKind.BIGQUERY}


def test_kind_names_in_the_committed_metadata_are_io_kinds():
    """What a Dataflow form sends (metadata.json's enum values and regex) canonicalises to the IoKind of that name."""
    metadata = json.loads((ROOT / "metadata.json").read_text())
    by_name = {parameter["name"]: parameter for parameter in metadata["parameters"]}
    for name in ("source", "sink"):
        values = [option["value"] for option in by_name[name]["enumOptions"]]
        assert values == ["text", "bigquery"]
        assert [canonical_kind(name, value) for value in values] == [IoKind.TEXT, IoKind.BIGQUERY]
        (regex,) = by_name[name]["regexes"]
        for value in ("text", "bigquery", "cs", "bq"):
            assert re.fullmatch(regex, value), value
            assert isinstance(canonical_kind(name, value), IoKind)
    assert [canonical_kind("source", value) for value in by_name["query"]["parentTriggerValues"]] == [
        IoKind.BIGQUERY,
        IoKind.BIGQUERY,
    ]
