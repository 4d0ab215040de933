"""Launch-time checks of the statistics' parameters: the mode, where the stats JSON goes, and the baseline,
read here once (its JSON travels with the job: workers never read it) and checked in one line each.

The baseline's full JSON Schema is `data/stats_schema.json` (tests validate every stats JSON against it);
the launch checks what drift needs of it, without a JSON Schema library in the runtime.
"""

from __future__ import annotations

import itertools
import json
import numbers
from typing import Any

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import GoogleCloudOptions

from pipeline.config import IoKind, StatisticsPlan
from pipeline.data.statistics import BYTES, NUMBER, SCHEMA_VERSION, STRING
from pipeline.errors import LaunchError, first_line
from pipeline.launch.file_checks import check_writable
from pipeline.launch.numbers import fraction
from pipeline.launch.parameters.statistics import DEFAULT_STATISTICS, STATISTICS_OFF, STATISTICS_ON, STATISTICS_ONLY
from pipeline.launch.table_checks import is_table_spec
from pipeline.model.signatures import TensorSpec

_MODES = (STATISTICS_ON, STATISTICS_OFF, STATISTICS_ONLY)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _histogram_problem(histogram: Any, where: str) -> str | None:
    if histogram is None:
        return None
    if not isinstance(histogram, dict) or not isinstance(histogram.get("edges"), list):
        return f"{where}: histogram has no edges"
    edges, counts = histogram["edges"], histogram.get("counts")
    if not isinstance(counts, list) or len(edges) != len(counts) + 1 or not counts:
        return f"{where}: a histogram has one edge more than counts"
    if not all(_number(value) for value in edges + counts):
        return f"{where}: histogram edges and counts are numbers"
    if any(later < earlier for earlier, later in itertools.pairwise(edges)):
        return f"{where}: histogram edges must not decrease"
    return None


def _feature_problem(feature: Any, where: str) -> str | None:
    if not isinstance(feature, dict) or feature.get("kind") not in (NUMBER, STRING, BYTES):
        return f"{where}: has no kind of number, string or bytes"
    if not isinstance(feature.get("count"), int):
        return f"{where}: has no count"
    if feature["kind"] == NUMBER:
        return _histogram_problem(feature.get("histogram"), where)
    if feature["kind"] == BYTES:
        size = feature.get("size")
        return _histogram_problem(size.get("histogram"), where) if isinstance(size, dict) else f"{where}: no size"
    top = feature.get("top")
    if not isinstance(top, list) or not all(
        isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], int)
        for item in top
    ):
        return f"{where}: top is a list of [value, count]"
    return None


def stats_problem(stats: Any) -> str | None:
    """What makes a stats JSON unfit as a baseline, in a few words; None if fit."""
    if not isinstance(stats, dict):
        return "not a stats JSON (an object)"
    if stats.get("schema_version") != SCHEMA_VERSION:
        return f"schema_version is {stats.get('schema_version')!r}, not {SCHEMA_VERSION}"
    for section in ("inputs", "outputs"):
        features = stats.get(section)
        if not isinstance(features, dict):
            return f"{section} is not an object of features"
        for name, feature in features.items():
            if problem := _feature_problem(feature, f"{section}.{name}"):
                return problem
    classes = stats.get("classes")
    if classes is not None and (
        not isinstance(classes, dict)
        or not isinstance(classes.get("counts"), list)
        or not all(isinstance(count, int) for count in classes["counts"])
    ):
        return "classes has no list of counts"
    return None


VERTEX_STATISTICS_NAME = "batch_prediction"  # -stats.json, -report.html beside Vertex AI's prediction.results


def read_baseline(location: str, names: set[str]) -> dict[str, Any]:
    """The baseline's stats JSON, checked; `names`: this model's inputs and outputs, of which it must have one."""
    flag = f"--baseline={location}"
    try:
        with FileSystems.open(location, compression_type="uncompressed") as handle:
            data = handle.read()
    except Exception as error:  # missing, no permission, a folder
        raise LaunchError(f"{flag}: cannot read it: {first_line(error)}") from None
    try:
        stats = json.loads(data)
    except ValueError as error:
        raise LaunchError(f"{flag}: not JSON: {first_line(error)}") from None
    if problem := stats_problem(stats):
        raise LaunchError(f"{flag}: {problem}")
    theirs = set(stats["inputs"]) | set(stats["outputs"])
    if not theirs & names:
        raise LaunchError(
            f"{flag}: has none of this model's inputs and outputs ({', '.join(sorted(names))}); "
            f"it has {', '.join(sorted(theirs)) or 'none'}"
        )
    return stats


def _threshold(value: Any) -> float:
    return fraction(value, "--drift_threshold", "must be a distance above 0 and at most 1")


def _location(params, cloud: GoogleCloudOptions, sink: IoKind, output: str, local_runner: bool) -> str | None:
    """Where the stats JSON goes: a named prefix, the text output's, or under the temp location (None: nowhere)."""
    named = (params.stats_location or "").strip()
    if named:
        if is_table_spec(named) and FileSystems.get_scheme(named) is None and "/" not in named:
            raise LaunchError(f"--stats_location={named}: is a path prefix for files, not a table")
        if not local_runner and FileSystems.get_scheme(named) in (None, "file"):
            raise LaunchError(f"--stats_location={named}: a local path is lost with the workers; give a gs:// path")
        check_writable("--stats_location", named)
        return named
    if sink is IoKind.TEXT:
        return _beside(output) if str(params.output_shape or "").strip().lower() == "vertex" else output
    temp = (cloud.temp_location or "").strip().rstrip("/")
    if not temp:
        return None
    name = output.rsplit("/", 1)[-1].split(":")[-1]  # a topic's name; a table's dataset.table
    return f"{temp}/{name}"


def _beside(output: str) -> str:
    """Vertex AI's shape: the statistics in the output's folder under their own name, out of the way of a reader
    globbing `prediction.results-*` as it globs Vertex's own output."""
    directory, _ = FileSystems.split(output)
    return FileSystems.join(directory, VERTEX_STATISTICS_NAME) if directory else VERTEX_STATISTICS_NAME


def plan_statistics(
    params,
    cloud: GoogleCloudOptions,
    sink: IoKind,
    output: str,
    local_runner: bool,
    streaming: bool,
    specs: tuple[TensorSpec, ...],
) -> StatisticsPlan | None:
    """The job's StatisticsPlan (None with --statistics=off, or by default where they have no place: a table or
    topic output without --temp_location or --stats_location); `specs`: the model's inputs and outputs."""
    mode = str(params.statistics or DEFAULT_STATISTICS).strip().lower()
    if mode not in _MODES:
        raise LaunchError(f"--statistics={params.statistics}: must be one of {', '.join(_MODES)}")
    baseline_location = (params.baseline or "").strip() or None
    if mode == STATISTICS_OFF:
        for flag, value in (("--baseline", baseline_location), ("--stats_location", params.stats_location)):
            if value:
                raise LaunchError(f"{flag}={value}: applies to statistics, which --statistics=off turns off")
        return None
    if mode == STATISTICS_ONLY and streaming:
        raise LaunchError("--statistics=only reads a batch input (files, a table), not a subscription")
    threshold = _threshold(params.drift_threshold)
    location = _location(params, cloud, sink, output, local_runner)
    if location is None:
        if not params.statistics and not baseline_location:
            return None
        raise LaunchError(
            f"--stats_location is needed for the statistics of a {sink.value} output (or --temp_location, "
            "under which they go; or --statistics=off)"
        )
    names = {spec.name for spec in specs}
    baseline = read_baseline(baseline_location, names) if baseline_location else None
    return StatisticsPlan(location, baseline, baseline_location, threshold, only=mode == STATISTICS_ONLY)
