"""Launch-time checks of file inputs and outputs, through Beam's filesystems (local or gs://)."""

from __future__ import annotations

import contextlib
import uuid

from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from pipeline.data.batches import RecordBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.formats import CSV, FILES, TFRECORD
from pipeline.data.seed_lines import value_count
from pipeline.errors import LaunchError, first_line
from pipeline.reading.readers import files_batch, read_line_batches, read_tfrecord_batches, read_whole_file

_PROBE_FILES = 5  # how many files to look into


def matching_files(pattern: str) -> list[FileMetadata]:
    """The files a pattern matches, sorted by path, with their sizes."""
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise LaunchError(f"--input={pattern}: cannot list files: {first_line(error)}") from None
    if not matched:
        raise LaunchError(f"--input={pattern}: no file matches this pattern")
    return sorted(matched, key=lambda metadata: metadata.path)


def check_writable(flag: str, prefix: str) -> None:
    """Writes and deletes a probe file where the output files will go."""
    directory, _ = FileSystems.split(prefix)
    probe = FileSystems.join(directory or ".", f".write-probe-{uuid.uuid4().hex}")
    try:
        FileSystems.create(probe).close()
        FileSystems.delete([probe])
    except Exception as error:  # permission, missing bucket, read-only filesystem, ...
        raise LaunchError(f"{flag}={prefix}: cannot write there: {first_line(error)}") from None


def _first_batch_of(metadata: FileMetadata, record_format: str, records: int) -> RecordBatch | DeadLetter | None:
    """The first batch a job would read from one file (or the dead letter of its damage, or None if empty)."""
    readable = fileio.ReadableFile(metadata)
    if record_format == FILES:
        return files_batch([(metadata.path, read_whole_file(metadata.path))])
    if record_format == TFRECORD:
        batches = read_tfrecord_batches(readable, records)
    else:
        batches = read_line_batches(readable, records, header=record_format == CSV)
    with contextlib.closing(batches):
        return next(batches, None)


def first_batch(files: list[FileMetadata], record_format: str, records: int = 64) -> RecordBatch | None:
    """The first records of the first file that has any, read as the job reads them.

    A damaged or unreadable file is passed over (the job dead-letters it); only when none of the
    first files can be read at all is the input refused. None when they are all empty.
    """
    first_error: tuple[str, str] | None = None
    for metadata in files[:_PROBE_FILES]:
        try:
            batch = _first_batch_of(metadata, record_format, records)
        except Exception as error:  # damaged, no permission, ...
            first_error = first_error or (metadata.path, first_line(error))
            continue
        if isinstance(batch, DeadLetter):
            first_error = first_error or (metadata.path, batch.message)
        elif batch is not None:
            return batch
    if first_error is not None:
        path, message = first_error
        raise LaunchError(f"--input={path}: cannot read the file: {message}")
    return None


def first_record_width(batch: RecordBatch | None) -> int | None:
    """The value count of the first well-formed `key:v0,...` record of a batch, if any."""
    if batch is None:
        return None
    return next((count for line in batch.payloads if (count := value_count(line)) is not None), None)
