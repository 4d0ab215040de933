"""Reading an uncompressed line file a byte range at a time, so that many workers share one file.

Beam's text reads' rule: a line belongs to the range its first byte is in. A range that starts at
byte 0 reads from the file's start (dropping a UTF-8 byte-order mark and, for CSV, the header);
any other reads from one byte before its start and drops everything up to the first b"\\n", so that
it begins at the first line that starts at or after its start. Its last line may run past its
stop: it is read whole. Lines are bytes split at b"\\n" exactly as `readers.read_line_batches`
splits a whole file (a b"\\r" before it is the decoders' to strip, a last line without a newline is
still a record), and an uncompressed file has no end marker to check, so no damage to report.

A file of one range (up to about 80 MB) is read from its start by one reader, which knows each line's
number (`file:line`, the header line 1), and that range is never split. In a file of several ranges,
the readers after the first cannot know a line's number without reading all before it, so every
record of such a file is located by the byte offset where its line starts (`file@byte`), the first
range's too: a record's position then depends on the file alone, never on how a runner happened to
split it. Both forms are unique, never the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.data.batches import RecordBatch
from pipeline.data.formats import CSV, JSONL, KEY_VALUES

RANGE_BYTES = 64 << 20  # Beam's own desired bundle size for text files
READ_BYTES = 1 << 22
_TAIL_READ_BYTES = 1 << 16  # reads past the stop, to finish the last line, are small
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
LINE_FORMATS = (KEY_VALUES, JSONL, CSV)
OnBytes = Callable[[int], None] | None


def splittable(path: str, record_format: str) -> bool:
    """Whether a file can be read in ranges: a line format, not compressed (as Beam detects it by name).
    A compressed stream can only be decoded from its start; TFRecord and Avro files are read whole."""
    return (
        record_format in LINE_FORMATS
        and CompressionTypes.detect_compression_type(path) == CompressionTypes.UNCOMPRESSED
    )


@dataclass(frozen=True)
class LineRange:
    """Bytes [start, stop) of a file: the lines that start there. `header` is a CSV file's first line,
    read once for all the ranges of a file of several (the range at 0 skips it); a file's only range
    takes it from its own first line, so that a small file is opened once, not twice. A `whole` file
    (compressed) is read from its start by one reader; its stop is its size. A `numbered` range is a
    file's only one: its lines are numbered, and it is not split while it is read (its positions would
    then depend on the split)."""

    path: str
    start: int
    stop: int
    header: bytes | None = None
    whole: bool = False
    numbered: bool = False


def file_ranges(path: str, size: int, record_format: str, range_bytes: int = RANGE_BYTES) -> list[LineRange]:
    """What the readers of a line file share: its ranges where it is uncompressed (none where it is
    empty), else the whole file, even empty (a compressed file of no bytes is damaged). A CSV file of
    several ranges has its header read here, for the ranges that do not start with it."""
    if not splittable(path, record_format):
        return [LineRange(path, 0, size, whole=True)]
    ranges = split_file(path, size, None, range_bytes)
    if record_format == CSV and len(ranges) > 1:
        header = read_header(path)
        return [replace(line_range, header=header) for line_range in ranges]
    return ranges


def split_file(path: str, size: int, header: bytes | None = None, range_bytes: int = RANGE_BYTES) -> list[LineRange]:
    """A file's ranges of about `range_bytes` (the last may be up to a quarter longer, as Beam splits);
    none for an empty file."""
    ranges, start = [], 0
    while start < size:
        stop = min(start + range_bytes, size)
        if size - stop < range_bytes // 4:
            stop = size
        ranges.append(LineRange(path, start, stop, header))
        start = stop
    if len(ranges) == 1:
        return [LineRange(path, 0, size, header, numbered=True)]
    return ranges


def read_header(path: str) -> bytes:
    """A file's first line (a CSV header), without its newline or a byte-order mark."""
    with _open(path) as handle:
        pieces = []
        while piece := handle.read(_TAIL_READ_BYTES):
            end = piece.find(b"\n")
            if end >= 0:
                pieces.append(piece[:end])
                break
            pieces.append(piece)
    return b"".join(pieces).removeprefix(_BYTE_ORDER_MARK)


@dataclass(frozen=True)
class Lines:
    """Consecutive lines of a range as read: `offset` is where the first starts in the file, `line` its
    number where known (a range read from the file's start), `skew` the bytes of the first line that its
    payload lacks (a byte-order mark). What a reader claims is `last_start`, where the last line starts."""

    path: str
    offset: int
    payloads: list[bytes]
    line: int | None = None
    header: bytes | None = None
    skew: int = 0

    @property
    def last_start(self) -> int:
        if len(self.payloads) == 1:
            return self.offset
        return self.offset + self.skew + sum(map(len, self.payloads)) + len(self.payloads) - 1 - len(self.payloads[-1])

    def starts(self) -> list[int]:
        """Where each line starts in the file."""
        ends = accumulate((len(payload) + 1 for payload in self.payloads), initial=self.offset + self.skew)
        starts = list(ends)[:-1]
        starts[0] = self.offset
        return starts

    def first(self, count: int) -> Lines:
        return Lines(self.path, self.offset, self.payloads[:count], self.line, self.header, self.skew)

    def batch(self) -> RecordBatch:
        """The lines as records: `file:line` where the line number is known, `file@byte` otherwise."""
        if self.line is not None:
            return RecordBatch(self.path, self.line, self.payloads, self.header)
        return RecordBatch(self.path, self.offset, self.payloads, self.header, by_byte=True, skew=self.skew)


def _open(path: str) -> Any:
    return FileSystems.open(path, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED)


def read_range(
    line_range: LineRange,
    batch_size: int,
    stop_now: Callable[[], int] | None = None,
    csv: bool = False,
    on_bytes: OnBytes = None,
    read_bytes: int = READ_BYTES,
) -> Iterator[list[Lines]]:
    """The lines that start in a range, in batches of `batch_size` (the last shorter), the batches of
    each read together (a thread that reads ahead hands them over a read at a time, not a batch).

    `stop_now` tells the range's stop as it is now (a runner may move it closer while the range is
    read, to hand the rest to another worker): lines are read up to it, and a reader claims each
    batch before using it. With `csv`, a range at 0 skips the file's first line, the header (and takes
    it as the range's header where the range has none: a file's only range).
    """
    path, start = line_range.path, line_range.start
    current_stop = stop_now or (lambda: line_range.stop)
    count = on_bytes or (lambda _: None)
    with _open(path) as handle:
        if start == 0:
            data, offset = b"", 0  # data: read, not yet split into lines; offset: where it starts
            line: int | None = 1 if line_range.numbered else None
        else:
            handle.seek(start - 1)
            found, offset = _after_first_newline(handle, start - 1, count)
            if found is None:
                return
            data, line = found, None
        header_due, header = csv and start == 0, line_range.header
        carry: list[bytes] = []  # lines of ours, not yet yielded
        carry_offset, carry_line = offset, line
        ended = False
        while not ended:
            stop = current_stop()
            # up to the stop in large reads, then small ones to finish the last line; never less than the
            # partial line held, so that a line of any length is read in linear time
            size = min(read_bytes, max(stop - offset - len(data), 0) + _TAIL_READ_BYTES)
            chunk = handle.read(max(size, len(data)))
            count(len(chunk))
            read = data + chunk
            lines = read.split(b"\n")
            rest = lines.pop()
            # the end of the file: a last line without a newline is still a line, unless it is the byte-order
            # mark of a file that holds nothing else (the whole-file reader drops the mark before splitting)
            if not chunk and rest and not (offset == 0 and rest == _BYTE_ORDER_MARK):
                lines.append(rest)
                rest = b""
            ended = not chunk or offset + len(read) - len(rest) >= stop
            if ended:  # keep the lines that start before the stop
                lines = lines[: _starting_before(read, offset, stop, len(lines))]
            if header_due and lines:
                carry_offset, header_due = carry_offset + len(lines[0]) + 1, False
                header = lines[0].removeprefix(_BYTE_ORDER_MARK) if header is None else header
                carry_line = None if carry_line is None else 2
                lines = lines[1:]
            carry.extend(lines)
            whole = len(carry) if ended else len(carry) - len(carry) % batch_size
            batches = []
            for index in range(0, whole, batch_size):
                payloads = carry[index : index + batch_size]
                read_size = sum(map(len, payloads)) + len(payloads)  # before a byte-order mark is dropped
                batches.append(_lines(path, carry_offset, payloads, carry_line, header))
                carry_offset += read_size
                carry_line = None if carry_line is None else carry_line + len(payloads)
            if batches:
                yield batches
            carry = carry[whole:]
            offset, data = offset + len(read) - len(rest), rest


def _lines(path: str, offset: int, payloads: list[bytes], line: int | None, header: bytes | None) -> Lines:
    """Lines as read; the file's first line without a byte-order mark, as Windows tools write it."""
    if offset == 0 and payloads[0].startswith(_BYTE_ORDER_MARK):
        payloads[0] = payloads[0][len(_BYTE_ORDER_MARK) :]
        return Lines(path, offset, payloads, line, header, skew=len(_BYTE_ORDER_MARK))
    return Lines(path, offset, payloads, line, header)


def _starting_before(data: bytes, offset: int, stop: int, available: int) -> int:
    """How many of the lines of `data` (which starts at `offset` in the file) start before `stop`."""
    if offset >= stop:
        return 0
    return min(available, 1 + data.count(b"\n", 0, max(stop - offset - 1, 0)))


def _after_first_newline(handle: Any, position: int, count: Callable[[int], None]) -> tuple[bytes | None, int]:
    """The bytes read after the first b"\\n" at or after `position`, and where they start; None at the end."""
    while True:
        piece = handle.read(_TAIL_READ_BYTES)
        count(len(piece))
        if not piece:
            return None, position
        end = piece.find(b"\n")
        if end >= 0:
            return piece[end + 1 :], position + end + 1
        position += len(piece)
