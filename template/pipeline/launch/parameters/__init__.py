"""The template's parameters, defined once, in the groups of the Console's form.

`PARAMETERS` is the single source of truth: the command line (`launch.options`), both template
specs' metadata and the README's parameter table are generated from it (`scripts/template_metadata.py`)
and tests check that they agree. Standard Beam options (runner, project, region, temp_location, ...)
are Beam's own and pass straight through.
"""

from __future__ import annotations

from pipeline.launch.parameters.advanced import ADVANCED_PARAMETERS
from pipeline.launch.parameters.base import BATCH, MODES, STREAMING, Parameter
from pipeline.launch.parameters.input import INPUT_PARAMETERS
from pipeline.launch.parameters.model import MODEL_PARAMETERS
from pipeline.launch.parameters.output import OUTPUT_PARAMETERS
from pipeline.launch.parameters.statistics import STATISTICS_PARAMETERS
from pipeline.launch.parameters.udf import UDF_PARAMETERS

PARAMETERS: tuple[Parameter, ...] = (
    INPUT_PARAMETERS
    + MODEL_PARAMETERS
    + UDF_PARAMETERS
    + OUTPUT_PARAMETERS
    + ADVANCED_PARAMETERS
    + STATISTICS_PARAMETERS
)
BY_NAME = {parameter.name: parameter for parameter in PARAMETERS}


def parameters_for(mode: str) -> tuple[Parameter, ...]:
    """The parameters of one template spec."""
    return tuple(parameter for parameter in PARAMETERS if mode in parameter.modes)


def pickers_of(name: str) -> tuple[Parameter, ...]:
    """The kind-specific pickers that give the value of `name` (input, output)."""
    return tuple(parameter for parameter in PARAMETERS if parameter.picks_for == name)


__all__ = ["BATCH", "BY_NAME", "MODES", "PARAMETERS", "STREAMING", "Parameter", "parameters_for", "pickers_of"]
