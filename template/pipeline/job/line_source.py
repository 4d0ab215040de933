"""Line files (key_values, JSON Lines, CSV) read by many workers: uncompressed ones in byte ranges.

Each uncompressed file is cut into ranges of about 64 MB (`reading.line_ranges`); a compressed one
is one unit, read whole from its start. The units are reshuffled so that the workers (or a local
runner's processes) share them whatever a runner does with a splittable DoFn's first splits, then
read by one splittable DoFn whose OffsetRestrictionTracker lets the runner split a range again
while it is read (Dataflow's dynamic work rebalancing hands the rest of a straggler's range to an
idle worker). One DoFn for both kinds keeps the read fused
with the decoding and the model locally: a Flatten of two readers would be held in memory whole
by the local runner before anything after it ran.

A claim per record would cost as much as the rest of reading; a reader claims once per batch,
where its last line starts (claiming an offset claims all before it). The claim is made under the
runner's lock on the tracker, and where the runner has moved the range's stop inside the batch,
only the lines that start before the stop are claimed and used: the rest are the reader's of the
split-off part, who starts at the first line at or after the split.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.transforms.core import RestrictionProvider

from pipeline.data.dead_letters import DeadLetter
from pipeline.data.formats import CSV
from pipeline.job import metrics, progress
from pipeline.job.tags import DEAD_LETTERS
from pipeline.reading.line_ranges import LineRange, Lines, file_ranges, read_range
from pipeline.reading.readers import prefetched, read_line_batches

_READ_WHOLE = "read_whole"  # the batches of compressed files, where they are spread after reading


class NumberedRange(OffsetRange):
    """The restriction of a file's only range: its lines are numbered from the file's start, so it is never
    split (the lines after a split could only be located by their bytes, and a record's position would
    depend on where a runner split it)."""


class LinesTracker(OffsetRestrictionTracker):
    """An OffsetRestrictionTracker that also claims a batch of lines at once: given `Lines`, it claims
    the last of them that starts before the range's stop, and answers how many of the lines it claimed
    (fewer than all: the range is done). Offsets claim as they do for Beam's own tracker; a NumberedRange
    is not split."""

    def try_split(self, fraction_of_remainder: Any) -> Any:
        if isinstance(self.current_restriction(), NumberedRange):
            return None
        return super().try_split(fraction_of_remainder)

    def try_claim(self, position: Any) -> Any:
        if not isinstance(position, Lines):
            return super().try_claim(position)
        last, stop = position.last_start, self.current_restriction().stop
        if last < stop:
            return len(position.payloads) if super().try_claim(last) else 0
        starts = position.starts()
        kept = bisect_left(starts, stop)
        if kept and not super().try_claim(starts[kept - 1]):
            return 0
        super().try_claim(last)  # fails: the lines from the stop on are another reader's, and the range is done
        return kept


class _LineRanges(RestrictionProvider):
    """A range's restriction is itself (ranges are cut before they are spread), a file's only range a
    NumberedRange; a whole file's is [0, 1): claimed at 0 before it is read, it cannot be split."""

    def initial_restriction(self, element: LineRange) -> OffsetRange:
        if element.whole:
            return OffsetRange(0, 1)
        return (NumberedRange if element.numbered else OffsetRange)(element.start, element.stop)

    def create_tracker(self, restriction: OffsetRange) -> LinesTracker:
        return LinesTracker(restriction)

    def restriction_size(self, element: LineRange, restriction: OffsetRange) -> int:
        return max(element.stop, 1) if element.whole else restriction.size()  # an empty .gz is work: damage


_RANGES = _LineRanges()


class _ReadLinesFn(beam.DoFn):
    """The lines of a range or a whole file, in batches read ahead in a thread; a range's batches claimed
    before they are used, a damaged file's dead letter beside its batches."""

    def __init__(self, batch_size: int, csv: bool, tag_whole: bool):
        self._batch_size = batch_size
        self._csv = csv
        self._tag_whole = tag_whole
        self._records_read = metrics.counter(metrics.RECORDS_READ)

    def process(self, element: LineRange, tracker=beam.DoFn.RestrictionParam(_RANGES)):  # noqa: B008
        if element.whole:
            if tracker.try_claim(0):
                yield from self._whole(element)
            return
        restriction = tracker.current_restriction()
        if restriction.start >= restriction.stop:
            return
        reading = read_range(
            LineRange(element.path, restriction.start, restriction.stop, element.header, numbered=element.numbered),
            self._batch_size,
            stop_now=lambda: tracker.current_restriction().stop,
            csv=self._csv,
            on_bytes=progress.bytes_read,
        )
        for batches in prefetched(reading):
            for lines in batches:
                claimed = tracker.try_claim(lines)
                if claimed == len(lines.payloads):
                    yield lines.batch()
                    continue
                if claimed:  # the runner split the range inside this batch: the rest is another reader's
                    yield lines.first(claimed).batch()
                return
        tracker.try_claim(tracker.current_restriction().stop)  # every line of the range was read: done

    def _whole(self, element: LineRange):
        readable = fileio.ReadableFile(FileMetadata(element.path, element.stop))
        batches = read_line_batches(readable, self._batch_size, header=self._csv, on_bytes=progress.bytes_read)
        for item in prefetched(batches):
            if isinstance(item, DeadLetter):
                self._records_read.inc()  # the damaged rest of the file counts as one record that was read
                yield beam.pvalue.TaggedOutput(DEAD_LETTERS, item)
            else:
                yield beam.pvalue.TaggedOutput(_READ_WHOLE, item) if self._tag_whole else item


class _FileRangesFn(beam.DoFn):
    """A file's ranges, or the file whole; the header of a CSV file of several ranges is read here, once,
    for all of them (a file's only range takes it from its own first line: a small file is opened once)."""

    def __init__(self, record_format: str, range_bytes: int):
        self._record_format = record_format
        self._range_bytes = range_bytes

    def process(self, metadata):
        yield from file_ranges(metadata.path, metadata.size_in_bytes, self._record_format, self._range_bytes)


def read_line_files(
    matches, record_format: str, batch_size: int, range_bytes: int, spread_files: bool, spread_batches: bool
):
    """RecordBatches and dead letters of the line files whose metadata are `matches`: the steps of
    ReadFileRecords for a line format. `spread_files` reshuffles the files before they are split (a large
    CSV file's header is read there, and thousands of them would keep one worker busy); the ranges are
    always reshuffled. `spread_batches` reshuffles the batches of compressed files, which one worker
    reads each (a few large ones); ranges were spread before they were read."""
    if spread_files:
        matches = matches | "Spread files" >> beam.Reshuffle()
    read = (
        matches
        | "Split into ranges" >> beam.ParDo(_FileRangesFn(record_format, range_bytes))
        | "Spread ranges" >> beam.Reshuffle()
        | "Read ranges"
        >> beam.ParDo(_ReadLinesFn(batch_size, record_format == CSV, spread_batches)).with_outputs(
            DEAD_LETTERS, _READ_WHOLE, main="batches"
        )
    )
    batches = read.batches
    if spread_batches:
        spread = read[_READ_WHOLE] | "Spread batches" >> beam.Reshuffle()
        batches = (batches, spread) | "All batches" >> beam.Flatten()
    return batches, read[DEAD_LETTERS]
