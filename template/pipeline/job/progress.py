"""Process-local tallies of the records done and the input bytes read, for a run you can watch.

Beam's counters are read back only when a local job ends, so the steps also add to tallies here
(a lock and two additions per batch), which `launch.progress` shows while a local job runs. On
Dataflow the tallies stay unread and the job's counters are the progress.
"""

from __future__ import annotations

import threading


class _Tallies:
    def __init__(self):
        self._lock = threading.Lock()
        self.records = 0
        self.bytes_read = 0

    def add(self, records: int = 0, bytes_read: int = 0) -> None:
        with self._lock:
            self.records += records
            self.bytes_read += bytes_read

    def read(self) -> tuple[int, int]:
        with self._lock:
            return self.records, self.bytes_read

    def reset(self) -> None:
        with self._lock:
            self.records = self.bytes_read = 0


TALLIES = _Tallies()


def records_done(count: int) -> None:
    """Records that reached a sink: predictions and dead letters."""
    TALLIES.add(records=count)


def bytes_read(count: int) -> None:
    """Bytes read from input files as stored (compressed bytes for a compressed file)."""
    TALLIES.add(bytes_read=count)
