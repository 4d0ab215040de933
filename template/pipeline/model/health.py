"""What a process has learned about one model version: its recent record failures, and the batch that fits.

Owned by the version it describes (`model.versions.Version`), so that a new version starts afresh and
two models in one process never see each other's. Shared by the threads that call that version,
hence the lock. Nothing here knows TensorFlow or Beam.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

# Records failing alone within the recent window after which the failure share is judged at all.
BROKEN_AFTER = 100
# How many of the most recent records the failure share is measured over.
RECENT_RECORDS = 1000
# Successful calls at a learned batch limit before a batch twice that size is tried again.
GROW_AFTER = 64
# A model that keeps failing in a stream says so in the log at most this often.
LOG_EVERY_S = 60.0


@dataclass
class ModelHealth:
    """Recent outcomes of one model version in this process, and the batch limit learned from memory."""

    predicted: int = 0
    failed_alone: int = 0
    batch_limit: int | None = None  # None: no batch has run out of memory (or the limit grew back)
    announced_limit: int | None = None
    _recent: deque[tuple[int, int]] = field(default_factory=deque, repr=False)  # (predicted, failed) per call
    _recent_total: int = 0
    _recent_failed: int = 0
    _calls_at_limit: int = 0
    _patience: int = GROW_AFTER
    _last_logged: float = field(default=-LOG_EVERY_S, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record_success(self, size: int) -> None:
        """Counts a successful call of `size` records; after enough calls at the limit, lets it grow back."""
        with self.lock:
            self.predicted += size
            self._remember(size, 0)
            if self.batch_limit is not None and size >= self.batch_limit:
                self._calls_at_limit += 1
                if self._calls_at_limit >= self._patience:
                    self.batch_limit *= 2
                    self._calls_at_limit = 0

    def record_failure_alone(self) -> None:
        with self.lock:
            self.failed_alone += 1
            self._remember(0, 1)

    def failure_share(self) -> float | None:
        """The share of recent records that failed alone, once enough have failed or been seen to judge; else
        None."""
        with self.lock:
            if self._recent_failed < BROKEN_AFTER and self._recent_total < RECENT_RECORDS:
                return None
            return self._recent_failed / self._recent_total

    def learn_batch_limit(self, fitting: int) -> int | None:
        """A batch ran out of memory and its pieces of `fitting` records did not: later batches are split to
        `fitting`. Returns the limit to announce, when it is one not said before."""
        with self.lock:
            if self.batch_limit is not None and fitting >= self.batch_limit:
                return None
            grew_and_failed = self.batch_limit is not None  # batches are split to the limit: it grew too far
            self.batch_limit = fitting
            self._calls_at_limit = 0
            self._patience = self._patience * 2 if grew_and_failed else self._patience
            if self.announced_limit == fitting:
                return None
            self.announced_limit = fitting
            return fitting

    def time_to_log(self, now: float | None = None) -> bool:
        """True at most once every LOG_EVERY_S: a stream that keeps failing must not flood the log."""
        now = time.monotonic() if now is None else now
        with self.lock:
            if now - self._last_logged < LOG_EVERY_S:
                return False
            self._last_logged = now
            return True

    def _remember(self, predicted: int, failed: int) -> None:
        self._recent.append((predicted, failed))
        self._recent_total += predicted + failed
        self._recent_failed += failed
        # Drop the oldest calls while the window still holds RECENT_RECORDS without them.
        while self._recent_total - sum(self._recent[0]) >= RECENT_RECORDS:
            old_predicted, old_failed = self._recent.popleft()
            self._recent_total -= old_predicted + old_failed
            self._recent_failed -= old_failed
