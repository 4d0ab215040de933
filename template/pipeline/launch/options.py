"""The template's parameters on the command line: Beam pipeline options, `--help`, and one line for a flag
that nobody knows (Beam would drop it with a warning, and the job would run without it).

The parameters themselves are defined once, in `launch.parameters`.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterator, Sequence

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from pipeline.config import IoKind
from pipeline.errors import LaunchError
from pipeline.launch.parameters import PARAMETERS
from pipeline.launch.parameters.base import KINDS


def add_parameters(parser: argparse.ArgumentParser, with_defaults: bool = True) -> None:
    """Adds every template parameter to `parser`; types are checked later, with clear errors."""
    for parameter in PARAMETERS:
        default = parameter.default if with_defaults else None
        requirement = parameter.requirement
        help_text = parameter.help + ("" if requirement == "no" else f" Required: {requirement}.")
        if parameter.default is not None:
            help_text += f" Default: {parameter.default}."
        if parameter.example:
            help_text += f" Example: {parameter.example}"
        parser.add_argument(parameter.flag, dest=parameter.name, default=default, help=help_text)


class BatchPredictionOptions(PipelineOptions):
    """The template's parameters as Beam pipeline options."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        add_parameters(parser)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise LaunchError(message)


def help_text(prog: str) -> str:
    """--help: the template's parameters, required and defaults said; Beam's own options are Beam's."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Batch and streaming prediction with a TensorFlow model over files, BigQuery or Pub/Sub.",
        epilog="Standard Beam options (--runner, --project, --region, --temp_location, ...) pass through to Beam.",
    )
    add_parameters(parser, with_defaults=False)
    return parser.format_help()


def _beam_option_classes() -> Iterator[type[PipelineOptions]]:
    """Every registered PipelineOptions class (Beam's and ours), as Beam itself finds them."""
    pending = list(PipelineOptions.__subclasses__())
    seen: set[type] = set()
    while pending:
        options_class = pending.pop()
        if options_class in seen:
            continue
        seen.add(options_class)
        pending.extend(options_class.__subclasses__())
        yield options_class


def known_flags() -> dict[str, str]:
    """{flag name: who defines it} of every option a launch may give: ours, and every Beam option."""
    names: dict[str, str] = {}
    for options_class in _beam_option_classes():
        parser = _BeamArgumentParser(add_help=False, allow_abbrev=False)
        try:
            options_class._add_argparse_args(parser)
        except (argparse.ArgumentError, TypeError):  # a class that adds nothing of its own
            continue
        owner = "template" if options_class is BatchPredictionOptions else "Beam"
        for action in parser._actions:
            for flag in action.option_strings:
                names.setdefault(flag.lstrip("-"), owner)
    return names


def check_flags(argv: Sequence[str]) -> None:
    """Refuses a flag that neither the template nor Beam defines, naming the nearest known one: Beam would
    drop it ("Discarding unparseable args") and the job would run without it."""
    known = known_flags()
    for argument in argv:
        if not argument.startswith("--"):
            continue
        name = argument[2:].split("=", 1)[0]
        if name in known:
            continue
        spelled = name.replace("-", "_")
        if spelled in known:  # argparse takes flags as defined: Beam would drop --temp-location, too
            raise LaunchError(f"unknown parameter --{name}; did you mean --{spelled}?")
        ours = [parameter.name for parameter in PARAMETERS]
        close = difflib.get_close_matches(spelled, ours, n=1, cutoff=0.6) or difflib.get_close_matches(
            spelled, list(known), n=1, cutoff=0.75
        )
        hint = f"; did you mean --{close[0]}?" if close else "; `main.py --help` lists the template's parameters"
        raise LaunchError(f"unknown parameter --{name}: neither the template nor Beam has it{hint}")


def canonical_kind(parameter_name: str, value: str) -> IoKind:
    """The kind a source or sink value names, aliases included."""
    kind = KINDS.get(str(value).strip().lower())
    if kind is None:
        raise LaunchError(f"--{parameter_name}={value}: must be one of text, bigquery, pubsub (or cs, bq)")
    return kind
