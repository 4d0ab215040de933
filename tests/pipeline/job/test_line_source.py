"""Line files read in ranges by a splittable DoFn: a batch claimed at once, trimmed where the runner splits
it; a file's only range numbered and never split; ranges shared by the processes of a local multi-process
run, every record predicted exactly once."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput
from apache_beam.runners.sdf_utils import RestrictionTrackerView, ThreadsafeRestrictionTracker
from apache_beam.testing.util import assert_that, equal_to

from pipeline.job.graph import build
from pipeline.job.line_source import _RANGES, LinesTracker, NumberedRange, _ReadLinesFn
from pipeline.job.metrics import read_counts
from pipeline.job.sources import ReadFileRecords
from pipeline.job.tags import DEAD_LETTERS
from pipeline.launch.validation import validate
from pipeline.reading import line_ranges
from pipeline.reading.line_ranges import LineRange, Lines, file_ranges
from tests.conftest import SAMPLES
from tests.outputs import read_json_lines

TEMPLATE = Path(__file__).resolve().parents[3] / "template"


def ten_byte_lines(path: Path, count: int) -> Path:
    path.write_bytes(b"".join(b"%09d\n" % number for number in range(count)))  # line n starts at byte 10 n
    return path


def read(element: LineRange, tracker: ThreadsafeRestrictionTracker, split_after: dict[int, float] | None = None):
    """(position, payload) of each record the DoFn yields; `split_after` asks the runner's split of the
    range, at a fraction of what remains, after the batch of that index was yielded."""
    got, splits = [], []
    for index, batch in enumerate(
        _ReadLinesFn(4, csv=False, tag_whole=False).process(element, tracker=RestrictionTrackerView(tracker))
    ):
        got += [(batch.position_of(position), payload) for position, payload in enumerate(batch.payloads)]
        if split_after and index in split_after:
            splits.append(tracker.try_split(split_after[index]))
    tracker.check_done()
    return got, splits


def test_a_split_inside_a_batch_keeps_the_lines_before_it_and_the_rest_is_read_once_by_the_other_part(tmp_path):
    path = ten_byte_lines(tmp_path / "in.txt", 20)
    element = LineRange(str(path), 0, 200)
    tracker = ThreadsafeRestrictionTracker(_RANGES.create_tracker(_RANGES.initial_restriction(element)))
    # after the first batch (lines at 0..30, claimed at 30) a split at 30 + 0.3 x 170 = 81: the next batch
    # (40..70) is claimed whole, the one after (80..110) only its line at 80, the rest read by the other part;
    # a range of a file of several ranges (the first too) locates its lines by bytes, before and after a split
    primary, splits = read(element, tracker, {0: 0.3})
    ((_, residual),) = splits
    assert (tracker.current_restriction(), residual) == (OffsetRange(0, 81), OffsetRange(81, 200))
    assert [position for position, _ in primary] == [f"{path}@{10 * line}" for line in range(9)]
    rest, _ = read(element, ThreadsafeRestrictionTracker(_RANGES.create_tracker(residual)))
    assert [position for position, _ in rest] == [f"{path}@{10 * line}" for line in range(9, 20)]
    assert [payload for _, payload in primary + rest] == [b"%09d" % number for number in range(20)]


def test_a_checkpoint_right_after_a_claim_leaves_the_whole_next_batch_to_the_other_part(tmp_path):
    path = ten_byte_lines(tmp_path / "in.txt", 12)
    element = LineRange(str(path), 20, 120)  # lines at 20..110
    tracker = ThreadsafeRestrictionTracker(_RANGES.create_tracker(_RANGES.initial_restriction(element)))
    first, splits = read(element, tracker, {0: 0.0})  # claimed 50: [20, 51) and [51, 120)
    ((_, residual),) = splits
    assert residual == OffsetRange(51, 120)
    rest, _ = read(element, ThreadsafeRestrictionTracker(_RANGES.create_tracker(residual)))
    assert [position for position, _ in first] == [f"{path}@{offset}" for offset in (20, 30, 40, 50)]
    assert [position for position, _ in rest] == [f"{path}@{offset}" for offset in range(60, 120, 10)]


def test_a_file_of_one_range_is_numbered_and_never_split_while_a_range_of_a_larger_file_splits(tmp_path):
    """The only range of a file is read from its start by one reader that numbers its lines: a runner's split
    (a checkpoint, try_split(0), too) is refused, so no line after it is ever located by its bytes instead."""
    path = ten_byte_lines(tmp_path / "in.txt", 20)
    (only,) = file_ranges(str(path), 200, "key_values", range_bytes=170)  # 30 left: under a quarter, joined
    assert only == LineRange(str(path), 0, 200, numbered=True)
    restriction = _RANGES.initial_restriction(only)
    assert type(restriction) is NumberedRange and restriction == OffsetRange(0, 200)
    assert _RANGES.create_tracker(restriction).try_split(0) is None  # a checkpoint before anything is claimed
    tracker = ThreadsafeRestrictionTracker(_RANGES.create_tracker(restriction))
    got, splits = read(only, tracker, {0: 0.0, 1: 0.3, 3: 0.5})
    assert splits == [None, None, None] and tracker.current_restriction() == OffsetRange(0, 200)
    assert got == [(f"{path}:{line + 1}", b"%09d" % line) for line in range(20)]
    # the same bytes as a range of a file of several ranges: split at a checkpoint, located by bytes
    ordinary = LineRange(str(path), 0, 200)
    assert type(_RANGES.initial_restriction(ordinary)) is OffsetRange
    tracker = ThreadsafeRestrictionTracker(_RANGES.create_tracker(_RANGES.initial_restriction(ordinary)))
    first, splits = read(ordinary, tracker, {0: 0.0})
    assert [split[1] for split in splits] == [OffsetRange(31, 200)]
    assert [position for position, _ in first] == [f"{path}@{offset}" for offset in (0, 10, 20, 30)]


def test_a_small_file_is_read_as_numbered_lines_end_to_end_and_a_larger_one_by_bytes(tmp_path):
    """One range (up to a quarter over the range size): a CSV file with a byte-order mark and CRLF endings
    is `file:line`, its header line 1, as a compressed file's lines are; a larger one is `file@byte`."""
    rows = [b"%d,%d\r\n" % (key, key) for key in range(45)]
    body = b"key,x\r\n" + b"".join(rows)
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(b"\xef\xbb\xbf" + body)
    large.write_bytes(body * 2)  # three ranges; the second copy's header is a row like any other
    assert 256 < small.stat().st_size < 320 < large.stat().st_size
    assert [line_range.numbered for line_range in file_ranges(str(small), small.stat().st_size, "csv", 256)] == [True]
    with beam.Pipeline() as pipeline:
        batches, dead_letters = pipeline | ReadFileRecords(
            str(tmp_path / "*.csv"), "csv", batch_size=8, range_bytes=256
        )
        positions = batches | beam.FlatMap(lambda batch: [batch.position_of(index) for index in range(len(batch))])
        starts = [7 + sum(map(len, rows[:key])) for key in range(len(rows))]  # after the header, in each copy
        expected = [f"{small}:{key + 2}" for key in range(len(rows))] + [
            f"{large}@{offset}" for offset in starts + [len(body)] + [len(body) + start for start in starts]
        ]
        assert_that(positions, equal_to(expected))
        assert_that(dead_letters, equal_to([]), label="no dead letters")


def test_a_batch_is_claimed_at_its_last_line_or_up_to_the_stop():
    lines = Lines("f", 100, [b"aaaa", b"bb", b"c"])  # at 100, 105 and 108
    assert LinesTracker(OffsetRange(0, 200)).try_claim(lines) == 3
    tracker = LinesTracker(OffsetRange(0, 106))
    assert tracker.try_claim(lines) == 2
    tracker.check_done()  # the range is done: nothing is left to split off
    assert tracker.try_split(0.5) is None
    tracker = LinesTracker(OffsetRange(0, 100))
    assert tracker.try_claim(lines) == 0
    tracker.check_done()
    assert LinesTracker(OffsetRange(0, 100)).try_claim(99) and not LinesTracker(OffsetRange(0, 100)).try_claim(100)


def test_a_compressed_file_is_read_whole_its_batches_tagged_to_be_spread_and_its_damage_a_dead_letter(tmp_path):
    whole = tmp_path / "in.txt.gz"
    whole.write_bytes(gzip.compress(b"".join(b"%09d\n" % number for number in range(10))))
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(whole.read_bytes()[:-12])  # no trailer
    plain = ten_byte_lines(tmp_path / "in.txt", 10)
    reader = _ReadLinesFn(4, csv=False, tag_whole=True)

    def outputs(element: LineRange) -> list[tuple[str, object]]:
        tracker = ThreadsafeRestrictionTracker(_RANGES.create_tracker(_RANGES.initial_restriction(element)))
        got = [
            (item.tag, item.value) if isinstance(item, TaggedOutput) else ("main", item)
            for item in reader.process(element, tracker=RestrictionTrackerView(tracker))
        ]
        tracker.check_done()
        assert tracker.try_split(0.5) is None  # nothing is left to split off
        return got

    read = outputs(LineRange(str(whole), 0, whole.stat().st_size, whole=True))
    assert {tag for tag, _ in read} == {"read_whole"} and [batch.start for _, batch in read] == [1, 5, 9]
    damaged = outputs(LineRange(str(cut), 0, cut.stat().st_size, whole=True))
    assert [tag for tag, _ in damaged][-1] == DEAD_LETTERS and damaged[-1][1].reason == "truncated_input"
    assert {tag for tag, _ in outputs(LineRange(str(plain), 0, 100))} == {"main"}


def penguin_lines(count: int) -> list[bytes]:
    """Penguins without a key (keyed by position), each numbered by a field `n`; every 997th line not JSON."""
    rows = [json.loads(line) for line in (SAMPLES / "penguins" / "penguins.jsonl").read_bytes().splitlines()]
    lines = []
    for number in range(count):
        if number % 997 == 500:
            lines.append(b"{not json %d" % number)
            continue
        row = dict(rows[number % len(rows)], n=number)
        del row["key"]
        lines.append(json.dumps(row).encode())
    return lines


def test_both_processes_of_a_local_multi_process_run_read_ranges_and_every_record_is_predicted_once(
    tmp_path, monkeypatch
):
    """The UDF before the model tags each record with the process that decoded it: the one that read it, as
    a local run reads, decodes and scores a batch in one fused step (nothing is reshuffled after reading)."""
    lines = penguin_lines(12_000)
    source = tmp_path / "penguins.jsonl"
    source.write_bytes(b"\r\n".join(lines) + b"\r\n")
    udf = tmp_path / "udf.py"
    udf.write_text("import os\n\n\ndef tag(record: dict) -> dict:\n    return dict(record, pid=os.getpid())\n")
    range_bytes = 1 << 17
    monkeypatch.setattr(line_ranges, "RANGE_BYTES", range_bytes)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TEMPLATE), os.environ.get("PYTHONPATH")])))
    options = PipelineOptions(
        [
            f"--input={source}",
            f"--output={tmp_path / 'out' / 'p'}",
            f"--model={SAMPLES / 'penguins' / 'model'}",
            f"--python_udf_gcs_path={udf}",
            "--python_udf_function_name=tag",
            "--included_fields=n,pid",
            "--statistics=off",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ]
    )
    pipeline = beam.Pipeline(options=options)
    build(pipeline, validate(options))
    result = pipeline.run()
    result.wait_until_finish()

    rows = read_json_lines(tmp_path / "out" / "p-*.jsonl")
    letters = read_json_lines(tmp_path / "out" / "p_error_records-*.jsonl")
    bad = [number for number in range(len(lines)) if number % 997 == 500]
    assert sorted(row["n"] for row in rows) == sorted(set(range(len(lines))) - set(bad))  # each once
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 2)
    data = source.read_bytes()
    assert len(data) > 2 * range_bytes, "a file of several ranges"

    def line_at(position: str) -> bytes:
        """The line a position names, read from the file: every record of a file of several ranges is
        `file@byte`, where its line starts, the first range's too (whichever process read it)."""
        where = position.removeprefix(str(source))
        assert where[0] == "@", position
        offset = int(where[1:])
        assert offset == 0 or data[offset - 2 : offset] == b"\r\n", position  # a line's start, not inside one
        return data[offset : data.index(b"\r\n", offset)]

    assert all(line_at(row["key"]) == lines[row["n"]] for row in rows)  # each line's field `n` is its own
    assert any(row["key"] == f"{source}@0" for row in rows)  # the file's first line: by its byte too
    assert sorted(lines.index(line_at(letter["position"])) for letter in letters) == bad
    assert {letter["reason"] for letter in letters} == {"not_json"}
    by_range: dict[int, set[int]] = {}
    for row in rows:
        by_range.setdefault(starts[row["n"]] // range_bytes, set()).add(row["pid"])
    assert all(len(pids) == 1 for pids in by_range.values()), "a range is read by one process"
    pids = {row["pid"] for row in rows}
    assert len(pids) == 2 and os.getpid() not in pids, f"both worker processes read ranges: {by_range}"
    counts = read_counts(result)
    assert counts.reconciles and counts.records_read == len(lines)
