"""The statistics of a run: what the model was fed, what it returned and what became of the records, as
mergeable per-batch summaries and, finished, the stats JSON (`<output>-stats.json`, schema version 1,
`stats_schema.json` beside this module).

A summary is made per batch (vectorised numpy), merged in any order (per bundle, across workers, per
window) and finished once. Numbers keep exact count, mean, standard deviation (population), minimum
and maximum, and a quantile sketch (`sketches.Quantiles`) that the quantiles and the histogram (20
equal-width bins over [min, max]) are read from; an input wider than one value (an image) is
summarised over all its values. Strings keep the top values and a distinct count; bytes the
statistics of their sizes. `missing` counts the records with a non-finite number or an empty string.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.data.batches import InstanceBatch, ScoredBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.sketches import RUN_ITEMS, Distinct, Quantiles, TopValues, distinct_counts, hashes_of
from pipeline.model.signatures import TensorSpec

SCHEMA_VERSION = 1
NUMBER, STRING, BYTES = "number", "string", "bytes"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BINS = 20
TOP = 20
EXAMPLES = 3  # dead letters kept per reason
_MESSAGE_CHARS = 500
_FEATURE_KEYS = ("kind", "count", "missing", "values_per_record")  # of every FEATURE, not of a bytes' size


def feature_kind(spec: TensorSpec, whole_files: bool = False) -> str:
    """number, string or bytes: a tf.string named `*_bytes` (the TF Serving and Vertex AI convention) or fed
    whole files is bytes."""
    if spec.dtype != "string":
        return NUMBER
    return BYTES if whole_files or spec.name.endswith("_bytes") else STRING


@dataclass
class Numbers:
    records: int = 0
    missing: int = 0  # records with a non-finite value
    values: int = 0  # finite values summarised
    width: int = 0  # values per record
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    low: float = math.inf
    high: float = -math.inf
    sketch: Quantiles = field(default_factory=Quantiles)

    @classmethod
    def of(cls, array: np.ndarray) -> Numbers:
        records = len(array)
        flat = array.reshape(records, -1)
        if flat.dtype.kind == "b":
            flat = flat.astype(np.int8)
        ordered = np.sort(flat, axis=None)  # the sketch's, and the extremes: no pass of its own for either
        missing = 0
        if flat.dtype.kind == "f" and len(ordered) and not (np.isfinite(ordered[0]) and np.isfinite(ordered[-1])):
            missing = int(records - np.count_nonzero(np.isfinite(flat).all(axis=1)))
            ordered = ordered[np.isfinite(ordered)]  # NaN sorts last, infinities at the ends: still sorted
        summary = cls(records, missing, len(ordered), flat.shape[1])
        if not len(ordered):
            return summary
        starts, counts = distinct_counts(ordered)
        if len(starts) <= RUN_ITEMS:  # the moments from the distinct values (pixels, integers): a few of them
            distinct = ordered[starts].astype(np.float64)
            summary.mean = float(distinct @ counts) / len(ordered)
            deviations = distinct - summary.mean
            summary.m2 = float((deviations * deviations) @ counts)
        else:
            wide = ordered.astype(np.float64)
            summary.mean = float(wide.mean())
            deviations = wide - summary.mean
            summary.m2 = float(np.einsum("i,i->", deviations, deviations))
        summary.low, summary.high = float(ordered[0]), float(ordered[-1])
        summary.sketch = Quantiles.of_sorted(ordered, (starts, counts))
        return summary

    def merge(self, other: Numbers) -> None:
        """Chan et al.'s pairwise update of the mean and squared deviations: exact in any order."""
        total = self.values + other.values
        if other.values:
            delta = other.mean - self.mean
            self.m2 += other.m2 + delta * delta * self.values * other.values / total
            self.mean += delta * other.values / total
        self.records += other.records
        self.missing += other.missing
        self.values = total
        self.width = max(self.width, other.width)
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)
        self.sketch.merge(other.sketch)

    def compact(self) -> None:
        self.sketch.compact()

    def edges(self) -> np.ndarray:
        """BINS equal-width bins over [min, max] (a single value: numpy's bin of width 1 around it)."""
        low, high = (self.low, self.high) if self.high > self.low else (self.low - 0.5, self.high + 0.5)
        return np.linspace(low, high, BINS + 1)

    def finish(self) -> dict[str, Any]:
        finished: dict[str, Any] = {
            "kind": NUMBER,
            "count": self.records,
            "missing": self.missing,
            "values_per_record": self.width,
        }
        if not self.values:
            return {
                **finished,
                "mean": None,
                "std": None,
                "min": None,
                "max": None,
                "quantiles": None,
                "histogram": None,
            }
        edges = self.edges()
        counts = self.sketch.histogram(edges)
        quantiles = self.sketch.quantiles(QUANTILES)
        return {
            **finished,
            "mean": self.mean,
            "std": math.sqrt(max(self.m2, 0.0) / self.values),
            "min": self.low,
            "max": self.high,
            "quantiles": {f"{fraction:g}": value for fraction, value in zip(QUANTILES, quantiles, strict=True)},
            "histogram": {"edges": edges.tolist(), "counts": [round(count) for count in counts.tolist()]},
        }


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


@dataclass
class Strings:
    records: int = 0
    missing: int = 0  # empty values
    width: int = 0
    top: TopValues = field(default_factory=TopValues)
    distinct: Distinct = field(default_factory=Distinct)

    @classmethod
    def of(cls, array: np.ndarray) -> Strings:
        records = len(array)
        flat = array.reshape(records, -1)
        counts = Counter(flat.reshape(-1).tolist())
        if not all(type(value) is bytes for value in counts):  # text where a decoder kept it (few distinct values)
            mixed, counts = counts, Counter()
            for value, count in mixed.items():
                counts[_as_bytes(value)] += count
        return cls(records, counts.get(b"", 0), flat.shape[1], TopValues.of(counts), Distinct.of(hashes_of(counts)))

    def compact(self) -> None:
        pass

    def merge(self, other: Strings) -> None:
        self.records += other.records
        self.missing += other.missing
        self.width = max(self.width, other.width)
        self.top.merge(other.top)
        self.distinct.merge(other.distinct)

    def finish(self) -> dict[str, Any]:
        return {
            "kind": STRING,
            "count": self.records,
            "missing": self.missing,
            "values_per_record": self.width,
            "distinct": self.distinct.estimate(),
            "top": [[value.decode("utf-8", "replace"), count] for value, count in self.top.top(TOP)],
        }


@dataclass
class Bytes:
    records: int = 0
    missing: int = 0
    sizes: Numbers = field(default_factory=Numbers)

    @classmethod
    def of(cls, array: np.ndarray) -> Bytes:
        records = len(array)
        flat = array.reshape(records, -1)
        sizes = np.fromiter((len(_as_bytes(value)) for value in flat.reshape(-1).tolist()), np.int64)
        empty = int(records - np.count_nonzero((sizes.reshape(flat.shape) > 0).all(axis=1))) if records else 0
        return cls(records, empty, Numbers.of(sizes.reshape(flat.shape)))

    def compact(self) -> None:
        self.sizes.compact()

    def merge(self, other: Bytes) -> None:
        self.records += other.records
        self.missing += other.missing
        self.sizes.merge(other.sizes)

    def finish(self) -> dict[str, Any]:
        size = self.sizes.finish()
        return {
            "kind": BYTES,
            "count": self.records,
            "missing": self.missing,
            "values_per_record": size.pop("values_per_record"),
            "size": {key: value for key, value in size.items() if key not in _FEATURE_KEYS},
        }


Feature = Numbers | Strings | Bytes
_KINDS: dict[str, type[Numbers] | type[Strings] | type[Bytes]] = {NUMBER: Numbers, STRING: Strings, BYTES: Bytes}


@dataclass
class Classes:
    """A classifier's predicted classes (argmax) counted, and its confidence (the top score) summarised."""

    counts: np.ndarray
    confidence: Numbers = field(default_factory=Numbers)

    @classmethod
    def of(cls, scores: np.ndarray) -> Classes:
        finite = np.isfinite(scores).all(axis=1)
        kept = scores if finite.all() else scores[finite]
        counts = np.bincount(kept.argmax(axis=1), minlength=scores.shape[1]).astype(np.int64)
        return cls(counts, Numbers.of(kept.max(axis=1)))

    def merge(self, other: Classes) -> None:
        if len(other.counts) > len(self.counts):
            self.counts, other_counts = other.counts.copy(), self.counts
        else:
            other_counts = other.counts
        self.counts[: len(other_counts)] += other_counts
        self.confidence.merge(other.confidence)

    def finish(self, names: list[str] | None = None) -> dict[str, Any]:
        confidence = self.confidence.finish()["histogram"]
        return {"names": names, "counts": self.counts.tolist(), "confidence": confidence}


def _merge_features(mine: dict[str, Feature], theirs: dict[str, Feature]) -> None:
    for name, feature in theirs.items():
        if name in mine:
            mine[name].merge(feature)  # type: ignore[arg-type]  # one name, one kind
        else:
            mine[name] = feature


def _iso(unix_s: float) -> str:
    return datetime.datetime.fromtimestamp(unix_s, datetime.UTC).isoformat(timespec="milliseconds")


@dataclass
class Summary:
    """The mergeable statistics of part of a run: what the stats JSON is finished from."""

    inputs: dict[str, Feature] = field(default_factory=dict)
    outputs: dict[str, Feature] = field(default_factory=dict)
    classes: Classes | None = None
    records_read: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    versions: set[int] = field(default_factory=set)
    first_seen: float | None = None  # wall-clock seconds of the first and last batch summarised
    last_seen: float | None = None

    @classmethod
    def of_inputs(cls, features: dict[str, np.ndarray], kinds: dict[str, str], records: int) -> Summary:
        """Inputs as fed to the model (batch-major arrays by name); their records count as read."""
        inputs = {name: _KINDS[kinds[name]].of(array) for name, array in features.items() if name in kinds}
        return cls(inputs=inputs, records_read=records)

    @classmethod
    def of_outputs(cls, outputs: dict[str, np.ndarray], kinds: dict[str, str], classifier: str | None) -> Summary:
        """The model's outputs (batch-major arrays by name); `classifier` names the output whose argmax is the class."""
        summaries = {name: _KINDS[kinds[name]].of(array) for name, array in outputs.items() if name in kinds}
        scores = outputs.get(classifier) if classifier is not None else None
        return cls(outputs=summaries, classes=Classes.of(scores) if scores is not None and len(scores) else None)

    @classmethod
    def of_instances(cls, batch: InstanceBatch, kinds: dict[str, str], seen: float) -> Summary:
        summary = cls.of_inputs(batch.features, kinds, len(batch))
        summary.first_seen = summary.last_seen = seen
        return summary

    @classmethod
    def of_scored(cls, scored: ScoredBatch, kinds: dict[str, str], classifier: str | None, seen: float) -> Summary:
        summary = cls.of_outputs(scored.outputs, kinds, classifier)
        summary.versions = {scored.model_version} if scored.model_version is not None else set()
        summary.first_seen = summary.last_seen = seen
        return summary

    @classmethod
    def of_dead_letter(cls, letter: DeadLetter, read: bool) -> Summary:
        """A dead letter by its reason, with an example; `read` for one that never became an instance."""
        example = {"origin": letter.origin, "position": letter.position, "message": letter.message[:_MESSAGE_CHARS]}
        return cls(records_read=int(read), dead_letters={letter.reason: 1}, examples={letter.reason: [example]})

    def merge(self, other: Summary) -> None:
        _merge_features(self.inputs, other.inputs)
        _merge_features(self.outputs, other.outputs)
        if other.classes is not None:
            if self.classes is None:
                self.classes = other.classes
            else:
                self.classes.merge(other.classes)
        self.records_read += other.records_read
        for reason, count in other.dead_letters.items():
            self.dead_letters[reason] = self.dead_letters.get(reason, 0) + count
        for reason, examples in other.examples.items():
            kept = self.examples.setdefault(reason, [])
            kept.extend(examples[: EXAMPLES - len(kept)])
        self.versions |= other.versions
        seen = [time for time in (self.first_seen, other.first_seen) if time is not None]
        self.first_seen = min(seen) if seen else None
        seen = [time for time in (self.last_seen, other.last_seen) if time is not None]
        self.last_seen = max(seen) if seen else None

    def compact(self) -> None:
        """Pending sketch items merged: the smallest form to send across workers."""
        for feature in (*self.inputs.values(), *self.outputs.values()):
            feature.compact()
        if self.classes is not None:
            self.classes.confidence.compact()

    def finish(self, source: str, model: str, ended: float, predicts: bool = True) -> dict[str, Any]:
        """The stats JSON, drift left null (`drift.drift_of` fills it). `ended`: when the run's span ends
        (wall-clock seconds); `predicts`: false for a run that only computes statistics."""
        dead_letters = sum(self.dead_letters.values())
        started = self.first_seen if self.first_seen is not None else ended
        duration = max(ended - started, 0.0)
        return {
            "schema_version": SCHEMA_VERSION,
            "run": {
                "input": source,
                "model": model,
                "started": _iso(started),
                "duration_s": duration,
                "records_read": self.records_read,
                "predictions": max(self.records_read - dead_letters, 0) if predicts else 0,
                "dead_letters": dead_letters,
                "dead_letters_by_reason": dict(sorted(self.dead_letters.items())),
                "dead_letter_examples": {reason: self.examples[reason] for reason in sorted(self.examples)},
                "model_versions": sorted(self.versions),
                "rate_per_s": self.records_read / duration if duration > 0 else 0.0,
                "statistics_only": not predicts,
            },
            "inputs": {name: feature.finish() for name, feature in sorted(self.inputs.items())},
            "outputs": {name: feature.finish() for name, feature in sorted(self.outputs.items())},
            "classes": self.classes.finish() if self.classes is not None else None,
            "drift": None,
        }
