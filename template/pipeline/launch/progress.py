"""A run you can watch: records done, their rate and the share of input bytes read, on stderr.

A reporter thread shows the job's tallies (`job.progress`) while a local job runs: one line
redrawn in place on a terminal (rich), a plain line every few seconds otherwise (a log file, CI).
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from pipeline.job.progress import TALLIES

PLAIN_INTERVAL_S = 5.0
TERMINAL_INTERVAL_S = 0.5


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def describe(records: int, read: int, total_bytes: int | None, elapsed_s: float) -> str:
    rate = records / elapsed_s if elapsed_s > 0 else 0.0
    text = f"{records:,} records done ({rate:,.0f}/s)"
    if total_bytes:
        text += f", {min(read / total_bytes, 1.0):.0%} of {_megabytes(total_bytes)} input read"
    return f"{text}, {elapsed_s:.0f} s"


class LiveProgress:
    """Shows the tallies on `stream` until stopped; use as a context manager around a local run."""

    def __init__(self, total_bytes: int | None, stream: TextIO | None = None, interval_s: float | None = None):
        self._total_bytes = total_bytes or None
        self._stream = stream or sys.stderr
        self._terminal = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval_s = interval_s or (TERMINAL_INTERVAL_S if self._terminal else PLAIN_INTERVAL_S)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._started = 0.0

    def __enter__(self) -> LiveProgress:
        TALLIES.reset()
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        if self._terminal:
            self._run_in_place()
            return
        while not self._stop.wait(self._interval_s):
            records, read = TALLIES.read()
            print(
                f"progress: {describe(records, read, self._total_bytes, time.monotonic() - self._started)}",
                file=self._stream,
                flush=True,
            )

    def _run_in_place(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        console = Console(file=self._stream, force_terminal=True)
        columns = [BarColumn(), TextColumn("{task.description}")]
        with Progress(*columns, console=console, transient=True, auto_refresh=False) as bar:
            task = bar.add_task("starting", total=self._total_bytes)
            while not self._stop.wait(self._interval_s):
                records, read = TALLIES.read()
                text = describe(records, read, self._total_bytes, time.monotonic() - self._started)
                bar.update(task, completed=read if self._total_bytes else None, description=text)
                bar.refresh()
