"""Event-time windows: each element in the window of its own timestamp, a late one kept in its window."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipeline.job.windows import event_time_windows


class _Panes(beam.DoFn):
    def process(self, grouped, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        _, values = grouped
        yield int(window.start), pane.index, sorted(values)


def test_an_element_behind_the_watermark_is_kept_in_its_own_window_in_a_later_pane():
    stream = (
        test_stream.TestStream()
        .add_elements([TimestampedValue(("k", "a"), 1), TimestampedValue(("k", "b"), 12)])
        .advance_watermark_to(25)  # both windows fired
        .add_elements([TimestampedValue(("k", "late"), 5)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as pipeline:
        panes = pipeline | stream | event_time_windows(10) | beam.GroupByKey() | beam.ParDo(_Panes())
        assert_that(panes, equal_to([(0, 0, ["a"]), (10, 0, ["b"]), (0, 1, ["late"])]))
