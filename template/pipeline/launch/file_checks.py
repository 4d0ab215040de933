"""Launch-time checks of file inputs and outputs, through Beam's filesystems (local or gs://).

An input that names a folder — a trailing `/`, a local directory, or a gs:// prefix with objects under
it and none of its own name — stands for every file under it but the hidden ones (`_SUCCESS`, `.crc`:
`data.formats.is_hidden_under`); the launch hands it on with a trailing `/`, which the job reads the same way.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Generator
from dataclasses import dataclass

from apache_beam.io import fileio
from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from pipeline.data.batches import ColumnBatch, RecordBatch, RowBatch, SourceBatch
from pipeline.data.dead_letters import DeadLetter
from pipeline.data.formats import (
    AUTO,
    AVRO,
    COLUMNAR_FORMATS,
    CSV,
    FILES,
    FORMATS,
    KEY_VALUES,
    PARQUET,
    TFRECORD,
    folder_files,
    format_of_name,
    is_folder,
    is_input_file,
)
from pipeline.data.seed_lines import value_count
from pipeline.errors import LaunchError, first_line
from pipeline.launch.table_checks import TableInfo
from pipeline.reading.columnar_files import file_columns, read_avro_batches, read_parquet_file
from pipeline.reading.readers import files_batch, read_line_batches, read_tfrecord_batches, read_whole_file

_PROBE_FILES = 5  # how many files to look into


_GLOB = frozenset("*?[")


def record_format_of(value: object, pattern: str, files: list[FileMetadata]) -> str:
    """--format as given, or (auto) what the pattern's name says, else that of the first file whose name says one."""
    chosen = str(value or AUTO).strip().lower()
    if chosen not in (AUTO, *FORMATS):
        raise LaunchError(f"--format={value}: must be one of {AUTO}, {', '.join(FORMATS)}")
    if chosen != AUTO:
        return chosen
    named = format_of_name(pattern)
    if named != KEY_VALUES:
        return named
    return next((found for metadata in files if (found := format_of_name(metadata.path)) != KEY_VALUES), KEY_VALUES)


def input_folder(pattern: str) -> str:
    """The input with a trailing `/` where it names a folder (a local directory, or a gs:// prefix that is
    no object itself but has objects under it); as given otherwise."""
    if is_folder(pattern) or _GLOB & set(pattern):
        return pattern
    try:
        if FileSystems.get_scheme(pattern) in (None, "file"):
            return pattern + "/" if os.path.isdir(pattern.removeprefix("file://")) else pattern
        if FileSystems.exists(pattern):
            return pattern
        under = FileSystems.match([folder_files(pattern + "/")], limits=[1])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise LaunchError(f"--input={pattern}: cannot list files: {first_line(error)}") from None
    return pattern + "/" if under else pattern


def matching_files(pattern: str) -> list[FileMetadata]:
    """The files a pattern matches (or a folder holds, hidden ones left out), sorted by path, with their sizes;
    never a folder's placeholder object (`folder/`)."""
    try:
        matched = FileSystems.match([folder_files(pattern) if is_folder(pattern) else pattern])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise LaunchError(f"--input={pattern}: cannot list files: {first_line(error)}") from None
    matched = [metadata for metadata in matched if is_input_file(metadata.path, pattern)]
    if is_folder(pattern) and not matched:
        raise LaunchError(f"--input={pattern}: the folder holds no file (names starting with _ or . are skipped)")
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


def _first_batch_of(metadata: FileMetadata, record_format: str, records: int) -> SourceBatch | DeadLetter | None:
    """The first batch a job would read from one file (or the dead letter of its damage, or None if empty)."""
    readable = fileio.ReadableFile(metadata)
    if record_format == FILES:
        return files_batch([(metadata.path, read_whole_file(metadata.path))])
    batches: Generator[SourceBatch | DeadLetter, None, None]
    if record_format == PARQUET:  # every column: the plan is made from them
        batches = read_parquet_file(metadata.path, records)
    elif record_format == AVRO:
        batches = read_avro_batches(metadata.path, records)
    elif record_format == TFRECORD:
        batches = read_tfrecord_batches(readable, records)
    else:
        batches = read_line_batches(readable, records, header=record_format == CSV)
    with contextlib.closing(batches):
        return next(batches, None)


def first_batch(files: list[FileMetadata], record_format: str, records: int = 64) -> SourceBatch | None:
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


def file_columns_of(files: list[FileMetadata], first: SourceBatch | None, record_format: str) -> TableInfo | None:
    """A Parquet or Avro input's columns and their types (from the file its first rows came from, else the
    first), and its first row, as a table's; None for formats without a schema."""
    if record_format not in COLUMNAR_FORMATS:
        return None
    path = first.origin if isinstance(first, ColumnBatch | RowBatch) and len(first) else files[0].path
    try:
        columns = file_columns(path, record_format)
    except Exception as error:  # the file's damage was found by first_batch where it had any
        raise LaunchError(f"--input={path}: cannot read the file's schema: {first_line(error)}") from None
    row = None
    if isinstance(first, ColumnBatch) and len(first):
        row = first.row(0)
    elif isinstance(first, RowBatch) and first.rows:
        row = first.rows[0]
    return TableInfo(columns, first_row=row)


def first_record_width(batch: SourceBatch | None) -> int | None:
    """The value count of the first well-formed `key:v0,...` record of a batch, if any."""
    if not isinstance(batch, RecordBatch):
        return None
    return next((count for line in batch.payloads if (count := value_count(line)) is not None), None)


@dataclass(frozen=True)
class FileInput:
    """What a launch learns of a file input: its pattern (a folder with a trailing `/`), its format, its
    first records, its columns (Parquet, Avro) and its size."""

    pattern: str
    record_format: str
    first: SourceBatch | None
    columns: TableInfo | None
    size_bytes: int
    file_count: int

    @property
    def sizes(self) -> tuple[int, int]:
        return self.size_bytes, self.file_count


def check_file_input(pattern: str, format_value: object) -> FileInput:
    """The files an input names, their format, and their first records read as the job reads them."""
    pattern = input_folder(pattern)
    files = matching_files(pattern)
    record_format = record_format_of(format_value, pattern, files)
    first = first_batch(files, record_format)
    size = sum(metadata.size_in_bytes for metadata in files)
    return FileInput(pattern, record_format, first, file_columns_of(files, first, record_format), size, len(files))
