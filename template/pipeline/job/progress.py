"""Process-local tallies of the records done and the input bytes read, for a run you can watch.

Beam's counters are read back only when a local job ends, so the steps also add to tallies here
(a lock and two additions per batch), which `launch.progress` shows while a local job runs. On
Dataflow the tallies stay unread and the job's counters are the progress.
"""

from __future__ import annotations

import threading

from pipeline.job.metrics import RunCounts


class _Tallies:
    def __init__(self):
        self._lock = threading.Lock()
        self.records = 0  # that reached a sink: predictions and dead letters
        self.bytes_read = 0
        self._counts = RunCounts()

    def add(self, records: int = 0, bytes_read: int = 0) -> None:
        with self._lock:
            self.records += records
            self.bytes_read += bytes_read

    def count(
        self,
        records_read: int = 0,
        predictions: int = 0,
        dead_letter_reason: str | None = None,
        udf_dropped: int = 0,
        udf_added: int = 0,
    ) -> None:
        """Adds to the local counts, the twins of the job's counters (see `counts`)."""
        with self._lock:
            self._counts.records_read += records_read
            self._counts.predictions += predictions
            self._counts.udf_dropped += udf_dropped
            self._counts.udf_added += udf_added
            self.records += predictions
            if dead_letter_reason is not None:
                self._counts.dead_letters += 1
                by_reason = self._counts.dead_letters_by_reason
                by_reason[dead_letter_reason] = by_reason.get(dead_letter_reason, 0) + 1
                self.records += 1

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.records, self.bytes_read

    def counts(self) -> RunCounts:
        """The records read, predicted and dead-lettered in this process: what a local streaming run that was
        stopped reports (Beam's local streaming runner commits too few of its counters to rely on)."""
        with self._lock:
            counts = self._counts
            return RunCounts(
                counts.records_read,
                counts.predictions,
                counts.dead_letters,
                dict(counts.dead_letters_by_reason),
                udf_dropped=counts.udf_dropped,
                udf_added=counts.udf_added,
            )

    def reset(self) -> None:
        with self._lock:
            self.records = self.bytes_read = 0
            self._counts = RunCounts()


TALLIES = _Tallies()


def records_done(count: int) -> None:
    """Records that reached a sink: predictions and dead letters."""
    TALLIES.add(records=count)


def records_read(count: int) -> None:
    TALLIES.count(records_read=count)


def udf_records(dropped: int, added: int) -> None:
    """Records a UDF before the model dropped on purpose, and those it added by splitting one."""
    TALLIES.count(udf_dropped=dropped, udf_added=added)


def predictions_done(count: int) -> None:
    TALLIES.count(predictions=count)


def dead_letter_done(reason: str) -> None:
    TALLIES.count(dead_letter_reason=reason)


def bytes_read(count: int) -> None:
    """Bytes read from input files as stored (compressed bytes for a compressed file)."""
    TALLIES.add(bytes_read=count)
