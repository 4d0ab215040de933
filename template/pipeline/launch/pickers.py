"""The Console form's kind-specific pickers (input_files, input_table, input_subscription; output_files,
output_table, output_topic), folded into --input and --output before anything reads them.

One parameter cannot carry a Cloud Storage browser, a table chooser and a Pub/Sub chooser at once, so
the form offers one picker per kind, shown for that kind only; on the command line --input and
--output keep working as they always did. A picker also says the kind, where --source or --sink is unset.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import IoKind
from pipeline.errors import LaunchError
from pipeline.launch.parameters import pickers_of

_KIND_OF_PICKER = {
    "GCS_READ_FILE": IoKind.TEXT,
    "GCS_WRITE_FILE": IoKind.TEXT,
    "BIGQUERY_TABLE": IoKind.BIGQUERY,
    "PUBSUB_SUBSCRIPTION": IoKind.PUBSUB,
    "PUBSUB_TOPIC": IoKind.PUBSUB,
}


def fold_pickers(params: Any) -> None:
    """Sets params.input and params.output from the picker given (and source, sink when unset)."""
    for name, kind_name in (("input", "source"), ("output", "sink")):
        given = {
            picker.name: value
            for picker in pickers_of(name)
            if (value := str(getattr(params, picker.name) or "").strip())  # a blank picker is not given
        }
        generic = str(getattr(params, name) or "").strip()
        values = set(given.values()) | ({generic} if generic else set())
        if len(values) > 1:
            flags = ", ".join(f"--{flag}" for flag in ([name] if generic else []) + sorted(given))
            raise LaunchError(f"{flags} name different places; give one of them")
        if not values:
            continue
        setattr(params, name, values.pop())
        if len(given) == 1 and not getattr(params, kind_name):
            (picker_name,) = given
            (picker,) = [picker for picker in pickers_of(name) if picker.name == picker_name]
            setattr(params, kind_name, _KIND_OF_PICKER[picker.param_type].value)
