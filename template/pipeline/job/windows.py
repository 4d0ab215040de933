"""The windows of a streaming job's text outputs: fixed windows of event time, each message's publish time.

Pub/Sub gives each message its publish time as its timestamp, so a message lands in the window it
was published in, however late it is read (a backlog, a retried bundle). A message read after its
window's files were written (behind the watermark) is written to another file of the same window,
not dropped: windows accept messages for as long as Pub/Sub keeps an unacknowledged one.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import FixedWindows
from apache_beam.utils.timestamp import Duration

# Pub/Sub's default retention of unacknowledged messages: a message it can still deliver is never too late.
ALLOWED_LATENESS_S = 7 * 24 * 3600


def event_time_windows(window_s: int) -> beam.WindowInto:
    """Fixed windows of `window_s` seconds by element timestamp, late elements kept (a pane of their own)."""
    return beam.WindowInto(FixedWindows(window_s), allowed_lateness=Duration(seconds=ALLOWED_LATENESS_S))
