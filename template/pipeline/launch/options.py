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
from pipeline.data.formats import FILES, FORMATS, JSONL, KEY_VALUES
from pipeline.errors import LaunchError

# Source and sink kinds, with the 2017 sample's names for them.
KIND_ALIASES = {"cs": IoKind.TEXT.value, "bq": IoKind.BIGQUERY.value}
KINDS = {**{kind.value: kind for kind in IoKind}, **{alias: IoKind(kind) for alias, kind in KIND_ALIASES.items()}}
KIND_PATTERN = rf"^({'|'.join(KINDS)})$"
DEFAULT_BATCH_SIZE = 256
MAX_BATCH_SIZE = 8192
DEFAULT_BATCH_WAIT_S = 0.5
DEFAULT_WINDOW_S = 60
DEFAULT_MODEL_POLL_S = 60

# The two template specs built from this one table: a parameter appears in the modes it names.
BATCH = "batch"
STREAMING = "streaming"
MODES = (BATCH, STREAMING)

# Formats a Dataflow parameter form can check before launch (metadata.json `regexes`).
GCS_PATH = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$"
TABLE_SPEC = r"^(([a-zA-Z0-9.:-]+)[:.])?[a-zA-Z0-9_]+\.[a-zA-Z0-9_$@-]+$"
GCS_PATH_OR_TABLE = rf"({GCS_PATH})|({TABLE_SPEC})"
SUBSCRIPTION = r"^projects/[a-z][-a-z0-9.:]{4,61}[a-z0-9]/subscriptions/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$"
TOPIC = r"^projects/[a-z][-a-z0-9.:]{4,61}[a-z0-9]/topics/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$"
GCS_PATH_TABLE_OR_TOPIC = rf"({GCS_PATH})|({TABLE_SPEC})|({TOPIC})"
POSITIVE_INTEGER = r"^[1-9][0-9]*$"
SECONDS = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
FIELD_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FORMAT_PATTERN = rf"^({'|'.join(('auto', *FORMATS))})$"
STREAMING_FORMATS = ("auto", KEY_VALUES, JSONL, FILES)  # what a message body may be


@dataclass(frozen=True)
class EnumOption:
    value: str
    label: str
    description: str
    modes: tuple[str, ...] = MODES


@dataclass(frozen=True)
class Parameter:
    """One template parameter: command-line flag, Dataflow metadata of each template spec, documentation."""

    name: str
    label: str
    help: str
    param_type: str  # Dataflow ParameterType: TEXT, ENUM, NUMBER, GCS_READ_FILE, ...
    required: bool = False
    default: str | int | float | None = None
    regexes: tuple[str, ...] = ()
    enum_options: tuple[EnumOption, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    parent_name: str | None = None
    parent_trigger_values: tuple[str, ...] = ()
    example: str = ""
    modes: tuple[str, ...] = MODES
    streaming_regexes: tuple[str, ...] | None = None  # where the streaming spec accepts other values
    shown_default: dict[str, str] = field(default_factory=dict)  # the form's default, where the CLI infers one

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    def regexes_for(self, mode: str) -> tuple[str, ...]:
        return self.streaming_regexes if mode == STREAMING and self.streaming_regexes is not None else self.regexes

    def options_for(self, mode: str) -> tuple[EnumOption, ...]:
        return tuple(option for option in self.enum_options if mode in option.modes)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="source",
        label="Input kind",
        help="Where records come from: 'text' (files, local or gs://, in the format --format names; gzip and "
        "other compression detected from the name), 'bigquery' (a table or query, columns fed to the model "
        "by name) or 'pubsub' (a subscription, one record per message: a streaming job). Defaults to pubsub "
        "for an input projects/<p>/subscriptions/<s>, to text otherwise. The 2017 sample's 'cs' and 'bq' are "
        "accepted.",
        param_type="ENUM",
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Files", "Records in files, local or gs://, optionally compressed", (BATCH,)),
            EnumOption(
                "bigquery", "BigQuery table", "Rows of a table or query, columns fed to the model by name", (BATCH,)
            ),
            EnumOption("pubsub", "Pub/Sub subscription", "One record per message, scored as it comes", (STREAMING,)),
        ),
        aliases=KIND_ALIASES,
        example="text",
        streaming_regexes=(r"^pubsub$",),
        shown_default={BATCH: "text", STREAMING: "pubsub"},
    ),
    Parameter(
        name="input",
        label="Input files, table or subscription",
        help="For source=text, a file pattern such as gs://bucket/images*.txt.gz; for source=bigquery, a table "
        "project:dataset.table or dataset.table (not needed when query is set); for source=pubsub, a "
        "subscription projects/<project>/subscriptions/<subscription>.",
        param_type="TEXT",
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(SUBSCRIPTION,),
        example="gs://my-bucket/mnist/images.txt.gz",
    ),
    Parameter(
        name="format",
        label="Record format",
        help="For source=text: 'key_values' (the 2017 sample's key:v0,v1,... lines), 'jsonl' (a JSON object or "
        "array per line), 'csv' (a header row, then a row per instance), 'tfrecord' (serialized tf.train.Examples, "
        "fed as bytes), 'files' (each file one instance, fed as bytes) or 'auto': from the file name, .gz and "
        "the like ignored (.jsonl/.json, .csv, .tfrecord(s), .png/.jpg/.jpeg/.gif/.bmp; key_values otherwise). "
        "For source=pubsub, what each message's body is: 'jsonl' (a JSON object; 'auto' means this), "
        "'key_values' (one key:v0,v1,... line) or 'files' (the bytes, such as a PNG).",
        param_type="ENUM",
        default="auto",
        regexes=(FORMAT_PATTERN,),
        streaming_regexes=(rf"^({'|'.join(STREAMING_FORMATS)})$",),
        enum_options=(
            EnumOption(
                "auto", "From the file name", "Detected from the file extension; key_values otherwise", (BATCH,)
            ),
            EnumOption("auto", "JSON", "Each message a JSON object, fields by input name", (STREAMING,)),
            EnumOption("key_values", "key:v0,v1,... lines", "The 2017 sample's lines: an integer key, values"),
            EnumOption("jsonl", "JSON Lines", "A JSON object (fields by input name) or array per record"),
            EnumOption("csv", "CSV", "A header row; unquoted values are numbers, quoted ones text", (BATCH,)),
            EnumOption(
                "tfrecord", "TFRecord", "Serialized tf.train.Examples, fed as bytes to one string input", (BATCH,)
            ),
            EnumOption("files", "Whole files or message bodies", "Each file or message one instance, fed as bytes"),
        ),
        parent_name="source",
        parent_trigger_values=(IoKind.TEXT.value, "cs", IoKind.PUBSUB.value),
        example="jsonl",
    ),
    Parameter(
        name="key_field",
        label="Key field",
        help="The field or column that identifies an instance: copied to the output, and fed to the model only "
        "if its signature has an input of that name. Records without one are keyed by position (file:line, "
        "file:index, the file's path, or a message's id).",
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
        modes=(BATCH,),
    ),
    Parameter(
        name="sink",
        label="Output kind",
        help="Where predictions go: 'text' (JSON lines; in a streaming job, files per window), 'bigquery' (a "
        "table created if needed: truncated on write in a batch job, rows added as they come in a streaming "
        "one) or 'pubsub' (a topic, one message per prediction; streaming jobs). Defaults to the kind the "
        "output names: a topic projects/<p>/topics/<t>, a table, or else the kind of source.",
        param_type="ENUM",
        regexes=(KIND_PATTERN,),
        enum_options=(
            EnumOption("text", "Text files", "One JSON object per line, sharded files under the output prefix"),
            EnumOption("bigquery", "BigQuery table", "A column per output, schema from the model"),
            EnumOption("pubsub", "Pub/Sub topic", "One message per prediction, the JSON row", (STREAMING,)),
        ),
        aliases=KIND_ALIASES,
        example="bigquery",
    ),
    Parameter(
        name="output",
        label="Output prefix, table or topic",
        help="For sink=text, the prefix of the prediction files, such as gs://bucket/out/predictions; for "
        "sink=bigquery, a table project:dataset.table or dataset.table; for sink=pubsub, a topic "
        "projects/<project>/topics/<topic>.",
        param_type="TEXT",
        required=True,
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(GCS_PATH_TABLE_OR_TOPIC,),
        example="gs://my-bucket/mnist/predictions",
    ),
    Parameter(
        name="model",
        label="Model location",
        help="A TF2 SavedModel directory, a .keras file, or a TF1 checkpoint (its folder, or its prefix …/export "
        "with export.meta beside it), local or gs://; or a folder of numbered versions of one of these "
        "(model/1/, model/2/, ... as TensorFlow Serving lays them out), of which the highest is served.",
        param_type="TEXT",
        required=True,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/mnist/model",
    ),
    Parameter(
        name="dead_letter",
        label="Dead-letter prefix, table or topic",
        help="Where records that cannot be predicted go, with the reason. Defaults to <output>_error_records "
        "(files for a text sink, a table for a BigQuery sink, a topic for a Pub/Sub sink).",
        param_type="TEXT",
        regexes=(GCS_PATH_OR_TABLE,),
        streaming_regexes=(GCS_PATH_TABLE_OR_TOPIC,),
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
    Parameter(
        name="max_batch_wait_seconds",
        label="Longest wait to fill a batch",
        help="In a streaming job, how long a record may wait for others to fill its batch before the batch is "
        "scored anyway: a trickle is scored promptly, a flood in full batches.",
        param_type="NUMBER",
        default=DEFAULT_BATCH_WAIT_S,
        regexes=(SECONDS,),
        example="0.5",
        modes=(STREAMING,),
    ),
    Parameter(
        name="window_seconds",
        label="Seconds of records per output file",
        help="In a streaming job with a text sink (or text dead letters), the length of the windows whose "
        "records are written to files of their own.",
        param_type="NUMBER",
        default=DEFAULT_WINDOW_S,
        regexes=(POSITIVE_INTEGER,),
        example="60",
        modes=(STREAMING,),
    ),
    Parameter(
        name="model_poll_seconds",
        label="Seconds between looks for a new model version",
        help="In a streaming job with a versioned model folder, how often each worker looks for a higher "
        "version; a new one is loaded beside the old and serves every batch after the switch.",
        param_type="NUMBER",
        default=DEFAULT_MODEL_POLL_S,
        regexes=(POSITIVE_INTEGER,),
        example="60",
        modes=(STREAMING,),
    ),
)


def parameters_for(mode: str) -> tuple[Parameter, ...]:
    """The parameters of one template spec."""
    return tuple(parameter for parameter in PARAMETERS if mode in parameter.modes)


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
        description="Batch and streaming prediction with a TensorFlow model over files, BigQuery or Pub/Sub.",
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
        raise LaunchError(f"--{parameter_name}={value}: must be one of text, bigquery, pubsub (or cs, bq)")
    return kind
