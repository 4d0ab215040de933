"""Mergeable summaries of a stream of values, bounded in memory whatever its length, in numpy.

Each takes a whole batch at once (vectorised) and merges with another of its kind in any order, so
that Beam can combine them per bundle, across workers and per window:

* `Quantiles`: a weighted sample kept in sorted runs of at most `RUN_ITEMS` items. A batch is one
  run, exact while it has at most RUN_ITEMS distinct values (each kept with its count); two runs of
  one level merge into one of the next level, compressed
  by cumulative weight. Each compression moves any rank by at most its run's weight / RUN_ITEMS,
  and a value is compressed once per level, so the rank error is at most about
  log2(batches) / RUN_ITEMS of the count (`rank_error` says the bound of a sketch). Quantiles,
  histograms and drift are all read from it.
* `TopValues`: the Misra-Gries summary (mergeable, Agarwal et al. 2012): at most `TOP_CAPACITY`
  counts, each an underestimate by at most `dropped`; exact while there are fewer distinct values.
* `Distinct`: the distinct count, exact (a set of 64-bit hashes) up to `EXACT_DISTINCT`, then a
  HyperLogLog of 2^12 registers (about 1.6 % standard error).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

RUN_ITEMS = 2048  # items a run of the quantile sketch keeps (32 KB)
_PENDING_ITEMS = 4 * RUN_ITEMS  # items of runs merged in that wait to be sorted together
TOP_CAPACITY = 1000  # values the top-value summary counts
EXACT_DISTINCT = 10_000  # distinct values counted exactly; above, estimated
MAX_VALUE_BYTES = 256  # a longer value is counted by its first bytes (memory stays bounded)
_HLL_BITS = 12
_HLL_REGISTERS = 1 << _HLL_BITS
_RANK_BITS = 64 - _HLL_BITS


@dataclass
class _Run:
    level: int
    values: np.ndarray  # float64, sorted
    weights: np.ndarray  # float64


def distinct_counts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each distinct value of a sorted array starts, and how many times it occurs."""
    starts = _starts(ordered)
    return starts, np.diff(starts, append=len(ordered))


def _starts(ordered: np.ndarray) -> np.ndarray:
    """Where each distinct value of a sorted array starts."""
    return np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))


def _compress(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RUN_ITEMS items at evenly spaced cumulative weights, each carrying an equal share of the total."""
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    targets = (np.arange(RUN_ITEMS) + 0.5) * (total / RUN_ITEMS)
    picked = np.minimum(np.searchsorted(cumulative, targets, side="left"), len(values) - 1)
    return values[picked], np.full(RUN_ITEMS, total / RUN_ITEMS)


@dataclass
class Quantiles:
    """A mergeable quantile sketch of finite numbers. Runs merged in are held as they come up to
    `_PENDING_ITEMS`, then sorted together once: the cost of a small batch is an append."""

    runs: list[_Run] = field(default_factory=list)  # settled: one a level
    pending: list[_Run] = field(default_factory=list)
    pending_items: int = 0
    error: float = 0.0  # a bound of the absolute rank error

    @classmethod
    def of(cls, values: np.ndarray) -> Quantiles:
        """The sketch of one batch of finite values (any numeric dtype, any shape)."""
        return cls.of_sorted(np.sort(values, axis=None))  # in the values' own dtype: numpy's SIMD sort

    @classmethod
    def of_sorted(cls, ordered: np.ndarray, distinct: tuple[np.ndarray, np.ndarray] | None = None) -> Quantiles:
        """The sketch of sorted finite values; `distinct`: their `distinct_counts`, if known."""
        count = len(ordered)
        if count == 0:
            return cls()
        starts, counts = distinct_counts(ordered) if distinct is None else distinct
        if len(starts) <= RUN_ITEMS:  # few distinct values (pixels, integers, a small batch): kept exactly
            run = _Run(0, ordered[starts].astype(np.float64), counts.astype(np.float64))
            return cls(pending=[run], pending_items=len(starts))
        picked = ((np.arange(RUN_ITEMS) + 0.5) * (count / RUN_ITEMS)).astype(np.int64)
        run = _Run(0, ordered[picked].astype(np.float64), np.full(RUN_ITEMS, count / RUN_ITEMS))
        return cls(pending=[run], pending_items=RUN_ITEMS, error=count / RUN_ITEMS)

    def merge(self, other: Quantiles) -> None:
        self.error += other.error
        self.pending.extend(other.pending)
        self.pending_items += other.pending_items
        if other.runs:
            self._carry(other.runs)
        if self.pending_items > _PENDING_ITEMS:
            self.compact()

    def compact(self) -> None:
        """The pending runs merged into one, carried into the settled ones."""
        if self.pending:
            run = self._combine(self.pending, 0)
            self.pending, self.pending_items = [], 0
            self._carry([run])

    def _combine(self, runs: list[_Run], level: int) -> _Run:
        """Runs as one, one item per distinct value, compressed to RUN_ITEMS items if it has more."""
        values = np.concatenate([run.values for run in runs])
        weights = np.concatenate([run.weights for run in runs])
        order = np.argsort(values, kind="stable")
        values, weights = values[order], weights[order]
        starts = _starts(values)
        values, weights = values[starts], np.add.reduceat(weights, starts)
        if len(values) > RUN_ITEMS:
            self.error += float(weights.sum()) / RUN_ITEMS
            values, weights = _compress(values, weights)
        return _Run(level, values, weights)

    def _carry(self, runs: list[_Run]) -> None:
        """Two runs of one level merge into one of the next, as a binary counter carries."""
        by_level = {run.level: run for run in self.runs}
        for run in sorted(runs, key=lambda item: item.level):
            while run.level in by_level:
                run = self._combine([by_level.pop(run.level), run], run.level + 1)
            by_level[run.level] = run
        self.runs = sorted(by_level.values(), key=lambda item: item.level)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """All the sketch's items, sorted by value, and their weights."""
        self.compact()
        if not self.runs:
            return np.empty(0), np.empty(0)
        values = np.concatenate([run.values for run in self.runs])
        weights = np.concatenate([run.weights for run in self.runs])
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    def quantiles(self, fractions: Iterable[float]) -> list[float]:
        """The smallest value whose estimated cumulative share reaches each fraction (numpy's inverted_cdf)."""
        values, weights = self.items()
        if not len(values):
            return [math.nan for _ in fractions]
        cumulative = np.cumsum(weights)
        targets = np.asarray(list(fractions)) * cumulative[-1]
        picked = np.minimum(np.searchsorted(cumulative, targets - 1e-9 * cumulative[-1], side="left"), len(values) - 1)
        return values[picked].tolist()

    def histogram(self, edges: np.ndarray) -> np.ndarray:
        """Estimated counts in the bins of `edges`; values outside them are counted in the first or last bin."""
        values, weights = self.items()
        counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges, weights=weights)
        return counts

    def rank_error(self) -> float:
        return self.error


@dataclass
class TopValues:
    """The most frequent values and their counts (Misra-Gries), each under by at most `dropped`."""

    counts: dict[bytes, int] = field(default_factory=dict)
    dropped: int = 0

    @classmethod
    def of(cls, counts: dict[bytes, int]) -> TopValues:
        kept: dict[bytes, int] = {}
        for value, count in counts.items():
            key = value[:MAX_VALUE_BYTES]
            kept[key] = kept.get(key, 0) + count
        top = cls(kept)
        top._reduce()
        return top

    def merge(self, other: TopValues) -> None:
        counts = self.counts
        for value, count in other.counts.items():
            counts[value] = counts.get(value, 0) + count
        self.dropped += other.dropped
        self._reduce()

    def _reduce(self) -> None:
        if len(self.counts) <= TOP_CAPACITY:
            return
        cut = sorted(self.counts.values(), reverse=True)[TOP_CAPACITY]
        self.counts = {value: count - cut for value, count in self.counts.items() if count > cut}
        self.dropped += cut

    def top(self, size: int) -> list[tuple[bytes, int]]:
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:size]

    def count_of(self, value: bytes) -> int:
        return self.counts.get(value[:MAX_VALUE_BYTES], 0)


def hashes_of(values: Iterable[bytes]) -> list[int]:
    """Stable 64-bit hashes (the same on every worker, unlike Python's salted hash())."""
    return [int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "little") for value in values]


def _registers(hashes: Iterable[int]) -> np.ndarray:
    registers = np.zeros(_HLL_REGISTERS, dtype=np.uint8)
    array = np.fromiter(hashes, dtype=np.uint64)
    if not len(array):
        return registers
    index = (array >> np.uint64(_RANK_BITS)).astype(np.int64)
    rest = array & np.uint64((1 << _RANK_BITS) - 1)
    # The position of the leftmost 1 in the 52 remaining bits (exact: below 2^53, floats hold integers).
    ranks = np.where(rest > 0, _RANK_BITS - np.floor(np.log2(np.maximum(rest, 1).astype(np.float64))), _RANK_BITS + 1)
    np.maximum.at(registers, index, ranks.astype(np.uint8))
    return registers


@dataclass
class Distinct:
    """The number of distinct values: exact (a set of their hashes) up to EXACT_DISTINCT, then HyperLogLog."""

    exact: set[int] | None = field(default_factory=set)
    registers: np.ndarray | None = None  # made when the exact set overflows

    @classmethod
    def of(cls, hashes: list[int]) -> Distinct:
        distinct = cls(set(hashes))
        distinct._overflow()
        return distinct

    def _overflow(self) -> None:
        if self.exact is not None and len(self.exact) > EXACT_DISTINCT:
            self.registers, self.exact = _registers(self.exact), None

    def _hll(self) -> np.ndarray:
        return self.registers if self.registers is not None else _registers(self.exact or ())

    def merge(self, other: Distinct) -> None:
        if self.exact is not None and other.exact is not None:
            self.exact |= other.exact
            self._overflow()
        else:
            self.registers, self.exact = np.maximum(self._hll(), other._hll()), None

    def estimate(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        registers = self._hll()
        size = float(_HLL_REGISTERS)
        alpha = 0.7213 / (1 + 1.079 / size)
        raw = alpha * size * size / float(np.sum(np.exp2(-registers.astype(np.float64))))
        zeros = int(np.count_nonzero(registers == 0))
        if raw <= 2.5 * size and zeros:
            return round(size * math.log(size / zeros))  # linear counting, for few values
        return round(raw)
