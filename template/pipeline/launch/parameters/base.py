"""What a template parameter is, and the patterns and kinds the parameter table is written with.

One table (`launch.parameters.PARAMETERS`) defines every parameter once: the command line, both
template specs' metadata (`metadata.json`, `metadata-streaming.json`) and the README's table are
generated from it. A parameter belongs to the specs (modes) it names, and to one group of the
Console's form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.config import IoKind
from pipeline.data.formats import FILES, FORMATS, JSONL, KEY_VALUES

# Source and sink kinds, with the 2017 sample's names for them.
KIND_ALIASES = {"cs": IoKind.TEXT.value, "bq": IoKind.BIGQUERY.value}
KINDS = {**{kind.value: kind for kind in IoKind}, **{alias: IoKind(kind) for alias, kind in KIND_ALIASES.items()}}
KIND_PATTERN = rf"^({'|'.join(KINDS)})$"
TEXT_KINDS = (IoKind.TEXT.value, "cs")
TABLE_KINDS = (IoKind.BIGQUERY.value, "bq")
DEFAULT_BATCH_SIZE = 256
MAX_BATCH_SIZE = 8192
DEFAULT_BATCH_WAIT_S = 0.5
DEFAULT_WINDOW_S = 60
DEFAULT_MODEL_POLL_S = 60

# The two template specs built from this one table: a parameter appears in the modes it names.
BATCH = "batch"
STREAMING = "streaming"
MODES = (BATCH, STREAMING)

# The groups of the Console's form, in the order it shows them.
INPUT, MODEL, OUTPUT, ADVANCED = "Input", "Model", "Output", "Advanced"
GROUPS = (INPUT, MODEL, OUTPUT, ADVANCED)

# Formats a Dataflow parameter form can check before launch (metadata `regexes`).
GCS_PATH = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$"
TABLE_SPEC = r"^(([a-zA-Z0-9.:-]+)[:.])?[a-zA-Z0-9_]+\.[a-zA-Z0-9_$@-]+$"
GCS_PATH_OR_TABLE = rf"({GCS_PATH})|({TABLE_SPEC})"
SUBSCRIPTION = r"^projects/[a-z][-a-z0-9.:]{4,61}[a-z0-9]/subscriptions/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$"
TOPIC = r"^projects/[a-z][-a-z0-9.:]{4,61}[a-z0-9]/topics/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$"
GCS_PATH_TABLE_OR_TOPIC = rf"({GCS_PATH})|({TABLE_SPEC})|({TOPIC})"
POSITIVE_INTEGER = r"^[1-9][0-9]*$"
SECONDS = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
SHARE = r"^(1(\.0*)?|0?\.[0-9]*[1-9][0-9]*)$"
FIELD_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
FIELD_LIST = rf"^{FIELD_NAME}(,{FIELD_NAME})*$"
SIGNATURE_NAME = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
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
    param_type: str  # Dataflow ParameterType: TEXT, ENUM, NUMBER, GCS_READ_FILE, BIGQUERY_TABLE, ...
    group: str
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
    picks_for: str | None = None  # a picker for another parameter (input, output) of one kind of place
    required_unless: str = ""  # what stands in for it where it is needed but not required (a picker, a query)

    @property
    def requirement(self) -> str:
        """How the README and --help say whether it must be given: 'yes', 'yes, unless ...', or 'no'."""
        if self.required:
            return "yes"
        return f"yes, unless {self.required_unless}" if self.required_unless else "no"

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    def regexes_for(self, mode: str) -> tuple[str, ...]:
        return self.streaming_regexes if mode == STREAMING and self.streaming_regexes is not None else self.regexes

    def options_for(self, mode: str) -> tuple[EnumOption, ...]:
        return tuple(option for option in self.enum_options if mode in option.modes)

    def triggers_for(self, mode: str, parent: Parameter | None) -> tuple[str, ...]:
        """The parent values that show this parameter in one spec's form (those the spec offers)."""
        if parent is None or not parent.enum_options:
            return self.parent_trigger_values
        values = {option.value for option in parent.options_for(mode)}
        offered = values | {alias for alias, value in parent.aliases.items() if value in values}
        return tuple(value for value in self.parent_trigger_values if value in offered)
