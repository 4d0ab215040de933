"""The statistics step: a side branch of the job that summarises what the model was fed and returned, and what
became of the records, and writes the stats JSON (`<location>-stats.json`).

The instance batches (after decoding) and scored batches (after the model) are summarised where they
are, a few batches at a time (vectorised numpy, `data.statistics`), each dead letter counted by
reason with a few examples, one summary a bundle goes on, and the summaries are merged by a
CombineFn whose accumulator is bounded whatever the input size (the sketches of `data.sketches`).
A batch job writes one file once everything is read; a streaming job writes one every `window_s`
seconds of processing time, for the records summarised since the previous one
(`<location>-stats-<UTC time>.json`). Nothing downstream waits on this branch: a batch job's
outputs are replaced whatever becomes of it, and what fails in it is logged and counted
(`statistics_errors`), never a failed job.

With a baseline, each feature's drift is added (`data.drift`), and counted: `drifted_features` (the
number of drifted features of the run, or of the period) and one `drifted_<feature>` counter per
drifted feature (`drifted_inputs.<name>`, `drifted_outputs.<name>`, `drifted_classes`), in the
job's namespace, so that a Cloud Monitoring alert can fire on them.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

import apache_beam as beam
import numpy as np
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms import trigger
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.config import IoKind, JobConfig, StatisticsPlan
from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.drift import drift_of, drifted
from pipeline.data.formats import FILES
from pipeline.data.statistics import Summary, feature_kind
from pipeline.errors import first_line
from pipeline.job import metrics

STATS_SUFFIX = "-stats.json"
DRIFTED_PREFIX = "drifted_"
DRIFTED_FEATURES = "drifted_features"
STATISTICS_ERRORS = "statistics_errors"  # the statistics could not be made or written: the job goes on
HELD_VALUES = 1 << 16  # values of batches held to be summarised at once (an image batch has more: at once)
_LOG = logging.getLogger(__name__)


def stats_path(location: str, fired: float | None = None) -> str:
    """`<location>-stats.json`; a streaming job's, `<location>-stats-<UTC time it was written>.json`."""
    if fired is None:
        return location + STATS_SUFFIX
    stamp = datetime.datetime.fromtimestamp(fired, datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{location}-stats-{stamp}.json"


def write_stats(path: str, stats: dict[str, Any]) -> None:
    """The stats JSON written through Beam's filesystems (local, gs://), replacing any file of that name."""
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")


def input_kinds(config: JobConfig) -> dict[str, str]:
    whole_files = config.source is IoKind.TEXT and config.record_format == FILES
    return {spec.name: feature_kind(spec, whole_files) for spec in config.signature.inputs}


def output_kinds(config: JobConfig) -> dict[str, str]:
    return {spec.name: feature_kind(spec) for spec in config.rows.outputs}


def classifier_output(config: JobConfig) -> str | None:
    """The output whose argmax is the class: the classifier contract's one (batch, C) float output."""
    return config.rows.outputs[0].name if config.rows.classes is not None else None


def statistics_failed(what: str, error: Exception) -> None:
    _LOG.error("The run's statistics are incomplete: %s failed: %s", what, first_line(error))
    metrics.counter(STATISTICS_ERRORS).inc()


def _joined(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """One array of the rows of all, or all as they are where their shapes differ (variable-length inputs)."""
    if len(arrays) == 1:
        return arrays
    try:
        return [np.concatenate(arrays)]
    except ValueError:
        return arrays


class HeldBatches:
    """The arrays of a few batches held and summarised at once, once they add up to HELD_VALUES values: small
    batches (tabular rows) cost a list append each, not a dozen numpy calls per feature."""

    def __init__(self, outputs: bool, kinds: dict[str, str], classifier: str | None = None):
        self._outputs = outputs
        self._kinds = kinds
        self._classifier = classifier
        self._arrays: dict[str, list[np.ndarray]] = {}
        self._records = self._values = 0
        self._versions: set[int] = set()
        self._seen: list[float] = []

    def add(self, arrays: dict[str, np.ndarray], records: int, version: int | None = None) -> Summary | None:
        """Holds a batch's arrays; the summary of all held once they are enough values (else None)."""
        for name, array in arrays.items():
            self._arrays.setdefault(name, []).append(array)
            self._values += array.size
        self._records += records
        if version is not None:
            self._versions.add(version)
        self._seen.append(time.time())
        return self.take() if self._values >= HELD_VALUES else None

    def take(self) -> Summary | None:
        """The summary of the batches held (None if none), which are let go."""
        if not self._seen:
            return None
        pieces = {name: _joined(arrays) for name, arrays in self._arrays.items()}
        summary = Summary()
        try:
            for index in range(max(len(piece) for piece in pieces.values()) if pieces else 0):
                part = {name: piece[index] for name, piece in pieces.items() if index < len(piece)}
                if self._outputs:
                    summary.merge(Summary.of_outputs(part, self._kinds, self._classifier))
                else:
                    summary.merge(Summary.of_inputs(part, self._kinds, 0))
        except Exception as error:  # the statistics miss these batches' values; the job goes on
            summary = Summary()
            statistics_failed("summarising " + ("outputs" if self._outputs else "inputs"), error)
        summary.records_read = 0 if self._outputs else self._records
        summary.versions = self._versions
        summary.first_seen, summary.last_seen = min(self._seen), max(self._seen)
        self._arrays, self._records, self._values, self._versions, self._seen = {}, 0, 0, set(), []
        return summary


class _SummariseFn(beam.DoFn):
    """Summarises a bundle's elements per window and emits one summary a bundle and window, not one a batch
    (each would be encoded on its way to the combine)."""

    def __init__(self, what: str, input_kinds: dict[str, str], output_kinds: dict[str, str], classifier: str | None):
        self._what = what  # instances, scored, unread or dead_letters
        self._input_kinds = input_kinds
        self._output_kinds = output_kinds
        self._classifier = classifier
        self._summaries: dict[Any, Summary] = {}
        self._held: dict[Any, HeldBatches] = {}

    def start_bundle(self):
        self._summaries, self._held = {}, {}

    def _keep(self, window: Any, summary: Summary | None) -> None:
        if summary is None:
            return
        kept = self._summaries.get(window)
        if kept is None:
            self._summaries[window] = summary
        else:
            kept.merge(summary)

    def _held_for(self, window: Any) -> HeldBatches:
        held = self._held.get(window)
        if held is None:
            scored = self._what == "scored"
            kinds = self._output_kinds if scored else self._input_kinds
            held = self._held[window] = HeldBatches(scored, kinds, self._classifier)
        return held

    def process(self, element: InstanceBatch | ScoredBatch | DeadLetter, window=beam.DoFn.WindowParam):
        if isinstance(element, InstanceBatch):
            self._keep(window, self._held_for(window).add(element.features, len(element)))
        elif isinstance(element, ScoredBatch):
            held = self._held_for(window)
            self._keep(window, held.add(element.outputs, len(element), element.model_version))
        elif self._what == "unread":
            self._keep(window, Summary(records_read=1))
        else:
            self._keep(window, Summary.of_dead_letter(element, read=False))

    def finish_bundle(self):
        for window, held in self._held.items():
            self._keep(window, held.take())
        summaries, self._summaries, self._held = self._summaries, {}, {}
        for window, summary in summaries.items():
            summary.compact()
            yield WindowedValue(summary, window.max_timestamp(), (window,))


class MergeSummaries(beam.CombineFn):
    """Summaries merged in any order: the accumulator holds sketches of bounded size."""

    def create_accumulator(self) -> Summary:
        return Summary()

    def add_input(self, accumulator: Summary, summary: Summary) -> Summary:
        accumulator.merge(summary)
        return accumulator

    def merge_accumulators(self, accumulators) -> Summary:
        merged = Summary()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def compact(self, accumulator: Summary) -> Summary:
        accumulator.compact()
        return accumulator

    def extract_output(self, accumulator: Summary) -> Summary:
        return accumulator


class _FinishFn(beam.DoFn):
    """The merged summary as the stats JSON, drift included and counted, written; (path, stats) out."""

    def __init__(self, plan: StatisticsPlan, source: str, model: str, streaming: bool):
        self._plan = plan
        self._source = source
        self._model = model
        self._streaming = streaming

    def process(self, summary: Summary):
        try:
            yield from self._finish(summary)
        except Exception as error:  # never a failed job (nor outputs left unreplaced) for want of statistics
            statistics_failed("writing the statistics", error)

    def _finish(self, summary: Summary):
        now = time.time()
        stats = summary.finish(self._source, self._model, now, predicts=not self._plan.only)
        plan = self._plan
        if plan.baseline is not None:
            stats["drift"] = drift_of(plan.baseline, summary, plan.drift_threshold, plan.baseline_location or "")
            names = drifted(stats["drift"])
            metrics.counter(DRIFTED_FEATURES).inc(len(names))
            for name in names:
                metrics.counter(DRIFTED_PREFIX + name).inc()
        path = stats_path(plan.location, now if self._streaming else None)
        write_stats(path, stats)
        yield path, stats


def _source_of(config: JobConfig) -> str:
    return config.input or config.query or ""


class ComputeStatistics(beam.PTransform):
    """Statistics of a run, written; returns a PCollection of (path written, stats JSON as a dict).

    Applied to a dict of PCollections: `instances` (InstanceBatches as decoded), `scored` (ScoredBatches;
    absent where the job only computes statistics), `unread` (the dead letters of records that never
    became instances: damaged input, undecodable records) and `dead_letters` (all of the job's).
    """

    def __init__(self, config: JobConfig):
        super().__init__()
        assert config.statistics is not None, "statistics are planned at launch"
        self._config = config
        self._plan: StatisticsPlan = config.statistics

    def expand(self, inputs: dict[str, beam.PCollection]):
        config = self._config
        kinds = (input_kinds(config), output_kinds(config), classifier_output(config))
        parts = [
            inputs[what] | f"Summarise {what}" >> beam.ParDo(_SummariseFn(what, *kinds))
            for what in ("instances", "scored", "unread", "dead_letters")
            if what in inputs
        ]
        summaries = parts | "Gather summaries" >> beam.Flatten()
        combine = beam.CombineGlobally(MergeSummaries())
        if config.streaming:  # a period's worth at a time, whatever the windows of the outputs
            summaries = summaries | "Every period" >> beam.WindowInto(
                GlobalWindows(),
                trigger=trigger.Repeatedly(trigger.AfterProcessingTime(config.window_s)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
            )
            combine = combine.without_defaults()
        finish = _FinishFn(self._plan, _source_of(config), config.model, config.streaming)
        return summaries | "Merge summaries" >> combine | "Finish and write" >> beam.ParDo(finish)
