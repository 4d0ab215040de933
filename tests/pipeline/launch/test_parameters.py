"""The parameter table: each parameter defined once, in a group of the Console's form, its options, defaults,
examples and pickers consistent with one another in each template spec (batch, streaming)."""

from __future__ import annotations

import re

import pytest

from pipeline.launch.parameters import BATCH, BY_NAME, MODES, PARAMETERS, STREAMING, parameters_for, pickers_of
from pipeline.launch.parameters.base import GROUPS

PICKER_TYPES = ("GCS_READ_FILE", "GCS_WRITE_FILE", "BIGQUERY_TABLE", "PUBSUB_SUBSCRIPTION", "PUBSUB_TOPIC")
PARAMETER_TYPES = ("TEXT", "ENUM", "NUMBER", "GCS_READ_FOLDER", *PICKER_TYPES)
PICKERS = [parameter for parameter in PARAMETERS if parameter.picks_for is not None]
ENUMS = [parameter for parameter in PARAMETERS if parameter.param_type == "ENUM"]
IN_EACH_MODE = [(parameter, mode) for parameter in PARAMETERS for mode in parameter.modes]


def named(parameters) -> list[str]:
    return [parameter.name for parameter in parameters]


def mode_id(case) -> str:
    parameter, mode = case
    return f"{parameter.name}-{mode}"


def test_names_are_unique_and_by_name_finds_each_parameter():
    names = named(PARAMETERS)
    assert len(names) == len(set(names))
    assert list(BY_NAME) == names
    assert all(BY_NAME[parameter.name] is parameter for parameter in PARAMETERS)


def test_each_spec_has_its_modes_parameters_in_the_tables_order():
    for mode in MODES:
        assert parameters_for(mode) == tuple(parameter for parameter in PARAMETERS if mode in parameter.modes)
    assert set(named(parameters_for(BATCH))) - set(named(parameters_for(STREAMING))) == {
        "query",
        "input_files",
        "input_table",
        "max_failure_share",  # a stream never stops for failing records
        "output_format",  # a stream writes JSON lines per window
        "existing_tables",  # a stream adds rows to its tables, new or not
    }
    assert set(named(parameters_for(STREAMING))) - set(named(parameters_for(BATCH))) == {
        "max_batch_wait_seconds",
        "window_seconds",
        "model_poll_seconds",
        "input_subscription",
        "output_topic",
    }


def test_every_parameter_belongs_to_a_known_mode_and_the_model_alone_is_required():
    assert all(parameter.modes and set(parameter.modes) <= set(MODES) for parameter in PARAMETERS)
    assert named(parameter for parameter in PARAMETERS if parameter.required) == ["model"]


def test_pickers_of_input_and_output_are_one_per_kind():
    assert named(pickers_of("input")) == ["input_files", "input_table", "input_subscription"]
    assert named(pickers_of("output")) == ["output_files", "output_table", "output_topic"]
    assert pickers_of("model") == ()
    assert pickers_of("nothing") == ()


def test_groups_are_the_forms_in_its_order():
    assert GROUPS == ("Input", "Model", "Output", "Advanced")
    positions = [GROUPS.index(parameter.group) for parameter in PARAMETERS]
    assert positions == sorted(positions), "the table lists parameters group by group, as the form shows them"


@pytest.mark.parametrize("parameter", PARAMETERS, ids=named(PARAMETERS))
def test_every_parameter_is_in_a_group_and_of_a_dataflow_type(parameter):
    assert parameter.group in GROUPS
    assert parameter.param_type in PARAMETER_TYPES
    assert parameter.label and parameter.help and parameter.example


@pytest.mark.parametrize("parameter", PARAMETERS, ids=named(PARAMETERS))
def test_enum_options_belong_to_enum_parameters_and_enum_parameters_have_them(parameter):
    assert bool(parameter.enum_options) is (parameter.param_type == "ENUM")


@pytest.mark.parametrize("parameter", ENUMS, ids=named(ENUMS))
def test_an_enums_options_are_unique_in_each_mode_and_its_default_is_one_of_them(parameter):
    for mode in parameter.modes:
        values = [option.value for option in parameter.options_for(mode)]
        assert values and len(values) == len(set(values)), (mode, values)
        default = parameter.shown_default.get(mode, parameter.default)
        assert default is None or default in values, (mode, default, values)


@pytest.mark.parametrize("parameter", ENUMS, ids=named(ENUMS))
def test_an_enums_regexes_accept_each_option_and_alias_it_offers(parameter):
    for mode in parameter.modes:
        offered = [option.value for option in parameter.options_for(mode)]
        offered += [alias for alias, value in parameter.aliases.items() if value in offered]
        for value in offered:
            assert all(re.fullmatch(pattern, value) for pattern in parameter.regexes_for(mode)), (mode, value)


@pytest.mark.parametrize("parameter", PARAMETERS, ids=named(PARAMETERS))
def test_each_parameters_example_is_a_value_one_of_its_specs_takes(parameter):
    """One example per parameter, shown by --help: a value of the batch spec where the parameter has one."""
    mode = parameter.modes[0]
    for pattern in parameter.regexes_for(mode):
        assert re.fullmatch(pattern, parameter.example), f"{pattern!r} refuses {parameter.example!r}"


@pytest.mark.parametrize("case", IN_EACH_MODE, ids=[mode_id(case) for case in IN_EACH_MODE])
def test_each_parameters_default_matches_its_regexes_in_each_mode(case):
    parameter, mode = case
    default = parameter.shown_default.get(mode, parameter.default)
    if default is not None:
        for pattern in parameter.regexes_for(mode):
            assert re.fullmatch(pattern, str(default)), f"{pattern!r} refuses {default!r}"


@pytest.mark.parametrize("picker", PICKERS, ids=named(PICKERS))
def test_a_picker_fills_an_existing_parameter_of_the_modes_it_is_in(picker):
    target = BY_NAME[picker.picks_for]
    assert target.picks_for is None and target.param_type == "TEXT"
    assert set(picker.modes) <= set(target.modes)
    assert picker.group == target.group


@pytest.mark.parametrize("picker", PICKERS, ids=named(PICKERS))
def test_a_picker_is_a_cloud_console_picker_shown_for_its_kind(picker):
    assert picker.param_type in PICKER_TYPES
    parent = BY_NAME[picker.parent_name]
    kinds = {option.value for option in parent.enum_options} | set(parent.aliases)
    assert picker.parent_trigger_values and set(picker.parent_trigger_values) <= kinds
    for mode in picker.modes:
        assert picker.triggers_for(mode, parent), f"{picker.name} is never shown in the {mode} form"


@pytest.mark.parametrize("picker", PICKERS, ids=named(PICKERS))
def test_a_pickers_example_is_a_value_its_target_accepts(picker):
    """The picker's value becomes the target's: what the picker accepts, the target must too."""
    target = BY_NAME[picker.picks_for]
    for mode in picker.modes:
        assert all(re.fullmatch(pattern, picker.example) for pattern in target.regexes_for(mode)), mode


@pytest.mark.parametrize("parameter", [p for p in PARAMETERS if p.parent_name], ids=lambda parameter: parameter.name)
def test_a_conditional_parameter_is_shown_by_an_enum_parameter_in_each_mode(parameter):
    parent = BY_NAME[parameter.parent_name]
    assert parent.param_type == "ENUM"
    for mode in parameter.modes:
        assert mode in parent.modes
        assert parameter.triggers_for(mode, parent), f"{parameter.name} is never shown in the {mode} form"
