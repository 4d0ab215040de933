"""Reading input files into batches of records, Beam-free: lines, TFRecord records, whole files.

What the job's sources run on workers, and what a launch runs on the first records to check
them: both read exactly the same way. Compression is detected from the file name and checked
(`reading.input_files`); the records before damage are read, the damage itself is one dead
letter, and nothing after it is passed off as the file's end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

from apache_beam.io import fileio

from pipeline.compat import read_tfrecord
from pipeline.data.batches import RecordBatch
from pipeline.data.dead_letters import DeadLetter, Reason, utc_now
from pipeline.errors import DamagedInput
from pipeline.reading.input_files import open_input

_READ_CHUNK_BYTES = 1 << 22
_PREFETCH_BATCHES = 4
_T = TypeVar("_T")
OnBytes = Callable[[int], None] | None


def prefetched(items: Iterable[_T], depth: int = _PREFETCH_BATCHES) -> Iterator[_T]:
    """Iterates `items` in a background thread, at most `depth` ahead of the consumer.

    Reading and decompressing (zlib releases the GIL) then overlap with the parsing and
    inference downstream, instead of taking turns with them. Errors surface in the consumer.
    """
    buffer: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
            buffer.put((done, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put((done, error))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.01)


_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def damage_letter(origin: str, damage: DamagedInput, cut: bytes = b"") -> DeadLetter:
    return DeadLetter(origin, cut, damage.reason, str(damage)[:2000], timestamp=utc_now())


def read_line_batches(
    readable: fileio.ReadableFile, batch_size: int, header: bool = False, on_bytes: OnBytes = None
) -> Generator[RecordBatch | DeadLetter, None, None]:
    """The lines of one file as bytes, in batches of `batch_size` records; a DeadLetter last if the
    file turns out to be damaged.

    Bytes, not text, so that a line that is not UTF-8 becomes a dead letter rather than a
    failed job. Lines end at b'\\n' (a '\\r' before it is stripped by the decoders), a UTF-8
    byte-order mark at the start of the file is dropped as Windows tools write it, and a last
    line without a newline is still a record. With `header`, the first line names the columns
    and rides along with every batch. Compression is detected from the file name and checked:
    the records before damage are read, the damage itself (with the partial line it cut) is one
    dead letter, and nothing after it is passed off as the file's end.
    """
    origin = readable.metadata.path
    lines_seen = 0  # line number of the last line split off
    batch: list[bytes] = []
    header_line: bytes | None = None
    remainder = b""
    damage: DamagedInput | None = None

    def emit(lines: list[bytes]) -> RecordBatch:
        return RecordBatch(origin, lines_seen - len(lines) + 1, lines, header_line)

    with open_input(origin, on_bytes=on_bytes) as handle:
        first = True
        while True:
            try:
                chunk = handle.read(_READ_CHUNK_BYTES)
            except DamagedInput as error:
                damage = error
                break
            if not chunk:
                break
            if first:
                chunk, first = chunk.removeprefix(_BYTE_ORDER_MARK), False
            lines = (remainder + chunk).split(b"\n")
            remainder = lines.pop()
            if header and header_line is None and lines:
                header_line, lines = lines[0], lines[1:]
                lines_seen += 1
            for line in lines:
                batch.append(line)
                lines_seen += 1
                if len(batch) == batch_size:
                    yield emit(batch)
                    batch = []
    if remainder and damage is None:
        if header and header_line is None:
            header_line = remainder
        else:
            batch.append(remainder)
        lines_seen += 1
    if batch:
        yield emit(batch)
    if damage is not None:
        yield damage_letter(origin, damage, remainder)


def read_tfrecord_batches(
    readable: fileio.ReadableFile, batch_size: int, on_bytes: OnBytes = None
) -> Generator[RecordBatch | DeadLetter, None, None]:
    """The records of one TFRecord file (gzip or not, by name), in batches, each record's length and
    data checked against their CRC-32C by Beam's reader; damage ends the file in one dead letter."""
    origin = readable.metadata.path
    batch: list[bytes] = []
    index = 0
    letter: DeadLetter | None
    with open_input(origin, on_bytes=on_bytes) as handle:
        while True:
            try:
                record = read_tfrecord(handle)
            except DamagedInput as damage:
                letter = damage_letter(origin, damage)
                break
            except ValueError as error:  # a record cut short, or its CRC does not match
                reason = Reason.TRUNCATED_INPUT if "Fewer than" in str(error) else Reason.CORRUPT_INPUT
                problem = str(error).split(":")[0]
                message = f"{origin}: record {index + len(batch)}: {problem}; the rest of the file was not read"
                letter = DeadLetter(origin, b"", reason, message, timestamp=utc_now())
                break
            if record is None:
                letter = None
                break
            batch.append(record)
            if len(batch) == batch_size:
                yield RecordBatch(origin, index, batch)
                index += len(batch)
                batch = []
    if batch:
        yield RecordBatch(origin, index, batch)
    if letter is not None:
        yield letter


def read_whole_file(path: str, on_bytes: OnBytes = None) -> bytes:
    """A file's bytes, decompressed when its name says so; DamagedInput when they cannot all be."""
    with open_input(path, on_bytes=on_bytes) as handle:
        return handle.read()


def files_batch(files: list[tuple[str, bytes]]) -> RecordBatch:
    """Whole files as one batch of records, each file's path its record's origin."""
    return RecordBatch("", 0, [data for _, data in files], origins=tuple(path for path, _ in files))
