"""The live progress of a local run: plain lines off a terminal, one line redrawn on one."""

from __future__ import annotations

import io
import time

from pipeline.job import progress
from pipeline.launch.progress import LiveProgress, describe


def test_the_description_says_records_rate_and_share_of_bytes():
    assert (
        describe(12_000, 5_000_000, 20_000_000, 4.0) == "12,000 records done (3,000/s), 25% of 20.0 MB input read, 4 s"
    )
    assert describe(10, 0, None, 2.0) == "10 records done (5/s), 2 s"


def test_off_a_terminal_plain_lines_come_every_interval():
    stream = io.StringIO()
    with LiveProgress(1_000_000, stream=stream, interval_s=0.05):
        progress.records_done(300)
        progress.bytes_read(500_000)
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 2 and all(line.startswith("progress: ") for line in lines)
    assert "300 records done" in lines[-1] and "50% of 1.0 MB input read" in lines[-1]
    assert "\r" not in stream.getvalue()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_line_is_redrawn_and_cleared_at_the_end():
    stream = _Terminal()
    with LiveProgress(None, stream=stream, interval_s=0.05):
        progress.records_done(42)
        time.sleep(0.3)
    text = stream.getvalue()
    assert "42 records done" in text and "progress: " not in text
    assert "\r" in text or "\x1b[" in text  # redrawn in place, not appended
