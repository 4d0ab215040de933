"""Parameters of the run's statistics and of their drift against a baseline (in the Advanced group of the form)."""

from __future__ import annotations

from pipeline.data.drift import DEFAULT_THRESHOLD
from pipeline.launch.parameters.base import ADVANCED, BATCH, GCS_PATH, SHARE, STREAMING, EnumOption, Parameter

STATISTICS_ON, STATISTICS_OFF, STATISTICS_ONLY = "on", "off", "only"
DEFAULT_STATISTICS = STATISTICS_ON  # they cost under 5 % of the steady rate (docs/performance.md)

STATISTICS_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        name="statistics",
        label="Statistics of the run",
        help="'on': the statistics of what the model was fed and returned and of the dead letters are written "
        "as JSON beside the output (<output>-stats.json; a streaming job's every window_seconds); by default on, "
        "except for a table or topic output with neither temp_location nor stats_location; 'off': none; "
        "'only': the statistics of the inputs alone, as the model's signature feeds them, without calling the "
        "model or writing predictions: a baseline from training data.",
        param_type="ENUM",
        group=ADVANCED,
        shown_default={BATCH: DEFAULT_STATISTICS, STREAMING: DEFAULT_STATISTICS},
        regexes=(rf"^({STATISTICS_ON}|{STATISTICS_OFF}|{STATISTICS_ONLY})$",),
        enum_options=(
            EnumOption(STATISTICS_ON, "On", "Statistics of every run, written beside its output"),
            EnumOption(STATISTICS_OFF, "Off", "No statistics"),
            EnumOption(STATISTICS_ONLY, "Only", "Statistics of the inputs; no prediction (a baseline)", (BATCH,)),
        ),
        example=STATISTICS_ONLY,
    ),
    Parameter(
        name="baseline",
        label="Baseline statistics",
        help="A stats JSON (schema_version 1) of an earlier run you trust, or of the training data "
        "(statistics=only): each input and output is compared with it, the distance written in the statistics "
        "(Jensen-Shannon divergence for numbers, L-infinity distance for strings and classes) and each one over "
        "drift_threshold counted (counters drifted_features and drifted_<feature>).",
        param_type="GCS_READ_FILE",
        group=ADVANCED,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/mnist/training-stats.json",
    ),
    Parameter(
        name="drift_threshold",
        label="Drift threshold",
        help="The distance from the baseline above which an input or output is flagged as drifted (0 to 1; "
        "Vertex AI Model Monitoring's default).",
        param_type="NUMBER",
        group=ADVANCED,
        default=DEFAULT_THRESHOLD,
        regexes=(SHARE,),
        example="0.3",
    ),
    Parameter(
        name="stats_location",
        label="Statistics location",
        help="The path prefix of the statistics (<stats_location>-stats.json). Defaults to the output prefix "
        "for files, and to <temp_location>/<table or topic> for a BigQuery or Pub/Sub output.",
        param_type="TEXT",
        group=ADVANCED,
        regexes=(GCS_PATH,),
        example="gs://my-bucket/mnist/predictions",
    ),
)
