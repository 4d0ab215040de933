"""The template's parameters, defined once.

`PARAMETERS` is the single source of truth: the command line (`BatchPredictionOptions`),
`metadata.json` and the README's parameter table are generated from it (see
`scripts/template_metadata.py`) and a test checks that they agree. Standard Beam options
(runner, project, region, temp_location, ...) are Beam's own and pass straight through.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import IoKind
from pipeline.data.formats import FORMATS
from pipeline.errors import LaunchError

# Source and sink kinds, with the 2017 sample's names for them.
KIND_ALIASES = {"cs": IoKind.TEXT.value, "bq": IoKind.BIGQUERY.value}
KINDS = {**{kind.value: kind for kind in IoKind}, **{alias: IoKind(kind) for alias, kind in KIND_ALIASES.items()}}
KIND_PATTERN = rf"^({'|'.join(KINDS)})$"
DEFAULT_BATCH_SIZE = 256
MAX_BATCH_SIZE = 8192

# Formats a Dataflow parameter form can check before launch (metadata.json `regexes`).
GCS_PATH = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$"
TABLE_SPEC = r"^(([a-zA-Z0-9.:-]+)[:.])?[a-zA-Z0-9_]+\.[a-zA-Z0-9_$@-]+$"
GCS_PATH_OR_TABLE = rf"({GCS_PATH})|({TABLE_SPEC})"
POSITIVE_INTEGER = r"^[1-9][0-9]*$"
FIELD_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FORMAT_PATTERN = rf"^({'|'.join(('auto', *FORMATS))})$"


@dataclass(frozen=True)
class EnumOption:
    value: str
    label: str
    description: str


@dataclass(frozen=True)
class Parameter:
    """One template parameter: command-line flag, Dataflow metadata and documentation."""

    name: str
    label: str
    help: str
    param_type: str  # Dataflow ParameterType: TEXT, ENUM, NUMBER, GCS_READ_FILE, ...
    required: bool = False
    default: str | int | None = None
    regexes: tuple[str, ...] = ()
    enum_options: tuple[EnumOption, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    parent_name: str | None = None
    parent_trigger_values: tuple[str, ...] = ()
    example: str = ""

    @property
    def flag(self) -> str:
        return f"--{self.name}"


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="source",
        label="Input kind",
        help="Where records come from: 'text' (files, local or gs://, in the format --format names; gzip and "
        "other compression detected from the name) or 'bigquery' (a table or query, columns fed to the model "
        "by name). The 2017 sample's 'cs' and 'bq' are accepted.",
        param_type="ENUM",
        default=IoKind.TEXT.value,
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Files", "Records in files, local or gs://, optionally compressed"),
            EnumOption("bigquery", "BigQuery table", "Rows of a table or query, columns fed to the model by name"),
        ),
        aliases=KIND_ALIASES,
        example="text",
    ),
    Parameter(
        name="input",
        label="Input files or table",
        help="For source=text, a file pattern such as gs://bucket/images*.txt.gz; for source=bigquery, a table "
        "project:dataset.table or dataset.table (not needed when query is set).",
        param_type="TEXT",
        regexes=(GCS_PATH_OR_TABLE,),
        example="gs://my-bucket/mnist/images.txt.gz",
    ),
    Parameter(
        name="format",
        label="Record format",
        help="For source=text: 'key_values' (the 2017 sample's key:v0,v1,... lines), 'jsonl' (a JSON object or "
        "array per line), 'csv' (a header row, then a row per instance), 'tfrecord' (serialized tf.train.Examples, "
        "fed as bytes), 'files' (each file one instance, fed as bytes) or 'auto': from the file name, .gz and "
        "the like ignored (.jsonl/.json, .csv, .tfrecord(s), .png/.jpg/.jpeg/.gif/.bmp; key_values otherwise).",
        param_type="ENUM",
        default="auto",
        regexes=(FORMAT_PATTERN,),
        enum_options=(
            EnumOption("auto", "From the file name", "Detected from the file extension; key_values otherwise"),
            EnumOption("key_values", "key:v0,v1,... lines", "The 2017 sample's lines: an integer key, values"),
            EnumOption("jsonl", "JSON Lines", "A JSON object (fields by input name) or array per line"),
            EnumOption("csv", "CSV", "A header row; unquoted values are numbers, quoted ones text"),
            EnumOption("tfrecord", "TFRecord", "Serialized tf.train.Examples, fed as bytes to one string input"),
            EnumOption("files", "Whole files", "Each file is one instance, its bytes fed to one string input"),
        ),
        parent_name="source",
        parent_trigger_values=(IoKind.TEXT.value, "cs"),
        example="jsonl",
    ),
    Parameter(
        name="key_field",
        label="Key field",
        help="The field or column that identifies an instance: copied to the output, and fed to the model only "
        "if its signature has an input of that name. Records without one are keyed by position (file:line, "
        "file:index, or the file's path).",
        param_type="TEXT",
        default="key",
        regexes=(rf"^{FIELD_NAME}$",),
        example="id",
    ),
    Parameter(
        name="included_fields",
        label="Input fields copied to the output",
        help="Comma-separated input fields copied into each prediction row beside the model's outputs, to join "
        "predictions back to their records (Vertex AI's included fields).",
        param_type="TEXT",
        regexes=(rf"^{FIELD_NAME}(,{FIELD_NAME})*$",),
        example="species,island",
    ),
    Parameter(
        name="query",
        label="BigQuery query",
        help="For source=bigquery, a GoogleSQL query read instead of a table; its columns are fed to the model "
        "by name (key and image for the 2017 sample's model).",
        param_type="TEXT",
        parent_name="source",
        parent_trigger_values=(IoKind.BIGQUERY.value, "bq"),
        example="SELECT key, image FROM mnist.images WHERE key < 1000",
    ),
    Parameter(
        name="sink",
        label="Output kind",
        help="Where predictions go: 'text' (JSON lines) or 'bigquery' (a table created if needed and "
        "truncated on write). Defaults to the kind of source.",
        param_type="ENUM",
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Text files", "One JSON object per line, sharded files under the output prefix"),
            EnumOption("bigquery", "BigQuery table", "A column per output, schema from the model; WRITE_TRUNCATE"),
        ),
        aliases=KIND_ALIASES,
        example="bigquery",
    ),
    Parameter(
        name="output",
        label="Output prefix or table",
        help="For sink=text, the prefix of the prediction files, such as gs://bucket/out/predictions; for "
        "sink=bigquery, a table project:dataset.table or dataset.table.",
        param_type="TEXT",
        required=True,
        regexes=(GCS_PATH_OR_TABLE,),
        example="gs://my-bucket/mnist/predictions",
    ),
    Parameter(
        name="model",
        label="Model location",
        help="A TF2 SavedModel directory, a .keras file, or a TF1 checkpoint (its folder, or its prefix …/export "
        "with export.meta beside it), local or gs://.",
        param_type="TEXT",
        required=True,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/mnist/model",
    ),
    Parameter(
        name="dead_letter",
        label="Dead-letter prefix or table",
        help="Where records that cannot be predicted go, with the reason. Defaults to <output>_error_records "
        "(files for a text sink, a table for a BigQuery sink).",
        param_type="TEXT",
        regexes=(GCS_PATH_OR_TABLE,),
        example="gs://my-bucket/mnist/rejected",
    ),
    Parameter(
        name="batch_size",
        label="Largest inference batch",
        help=f"Upper bound of the number of records sent to the model at once (1 to {MAX_BATCH_SIZE}).",
        param_type="NUMBER",
        default=DEFAULT_BATCH_SIZE,
        regexes=(POSITIVE_INTEGER,),
        example="256",
    ),
)


def add_parameters(parser: argparse.ArgumentParser) -> None:
    """Adds every template parameter to `parser`; types are checked later, with clear errors."""
    for parameter in PARAMETERS:
        parser.add_argument(parameter.flag, dest=parameter.name, default=parameter.default, help=parameter.help)


class BatchPredictionOptions(PipelineOptions):
    """The template's parameters as Beam pipeline options."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        add_parameters(parser)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise LaunchError(message)


def help_text(prog: str) -> str:
    """--help: the template's parameters; Beam's own options are documented by Beam."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Batch prediction with a TensorFlow model over files or BigQuery.",
        epilog="Standard Beam options (--runner, --project, --region, --temp_location, ...) pass through to Beam.",
    )
    add_parameters(parser)
    return parser.format_help()


def check_for_typos(argv: Sequence[str]) -> None:
    """Refuses a flag that is a near miss of a template parameter (Beam would silently drop it)."""
    parser = _OneLineParser(add_help=False, allow_abbrev=False)
    add_parameters(parser)
    _, unknown = parser.parse_known_args(list(argv))
    names = [parameter.name for parameter in PARAMETERS]
    for argument in unknown:
        if not argument.startswith("--"):
            continue
        name = argument[2:].split("=", 1)[0]
        close = difflib.get_close_matches(name.replace("-", "_"), names, n=1, cutoff=0.75)
        if close and close[0] != name:
            raise LaunchError(f"unknown parameter --{name}; did you mean --{close[0]}?")


def canonical_kind(parameter_name: str, value: str) -> IoKind:
    """The kind a source or sink value names, aliases included."""
    kind = KINDS.get(str(value).strip().lower())
    if kind is None:
        raise LaunchError(f"--{parameter_name}={value}: must be one of text, bigquery (or cs, bq)")
    return kind
