"""Launch-time checks of file inputs and outputs, through Beam's filesystems (local or gs://)."""

from __future__ import annotations

import uuid

from apache_beam.io.filesystem import FileMetadata
from apache_beam.io.filesystems import FileSystems

from pipeline.input_files import DamagedInput, open_input
from pipeline.options import LaunchError, first_line
from pipeline.records import value_count

_PROBE_BYTES = 1 << 22  # how far into a file to look for a record
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


def _head(path: str) -> bytes:
    """Up to _PROBE_BYTES of the file's records; of a damaged file, what precedes the damage."""
    chunks, length = [], 0
    with open_input(path) as handle:  # compression from the file name, as the job reads it
        while length < _PROBE_BYTES:
            try:
                chunk = handle.read(_PROBE_BYTES - length)
            except DamagedInput:
                if not chunks:
                    raise
                break
            if not chunk:
                break
            chunks.append(chunk)
            length += len(chunk)
    return b"".join(chunks)


def first_record_width(paths: list[str]) -> int | None:
    """The value count of the first well-formed record near the start of the first files, if any.

    A damaged or unreadable file is passed over (the job dead-letters it); only when none of the
    files looked at can be read at all is the input refused.
    """
    first_error: tuple[str, Exception] | None = None
    readable = False
    for path in paths[:_PROBE_FILES]:
        try:
            head = _head(path)
        except Exception as error:  # damaged, no permission, ...
            first_error = first_error or (path, error)
            continue
        readable = True
        lines = head.split(b"\n")
        if len(head) == _PROBE_BYTES:
            lines.pop()  # possibly cut short
        width = next((count for line in lines if (count := value_count(line)) is not None), None)
        if width is not None:
            return width
    if first_error is not None and not readable:
        path, error = first_error
        raise LaunchError(f"--input={path}: cannot read the file: {first_line(error)}")
    return None
