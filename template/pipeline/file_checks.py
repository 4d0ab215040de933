"""Launch-time checks of file inputs and outputs, through Beam's filesystems (local or gs://)."""

from __future__ import annotations

import uuid

from apache_beam.io.filesystems import FileSystems

from pipeline.input_files import open_input
from pipeline.options import LaunchError, first_line
from pipeline.records import value_count

_PROBE_BYTES = 1 << 22  # how far into the first file to look for a record


def matching_files(pattern: str) -> list[str]:
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise LaunchError(f"--input={pattern}: cannot list files: {first_line(error)}") from None
    if not matched:
        raise LaunchError(f"--input={pattern}: no file matches this pattern")
    return sorted(metadata.path for metadata in matched)


def check_writable(flag: str, prefix: str) -> None:
    """Writes and deletes a probe file where the output files will go."""
    directory, _ = FileSystems.split(prefix)
    probe = FileSystems.join(directory or ".", f".write-probe-{uuid.uuid4().hex}")
    try:
        FileSystems.create(probe).close()
        FileSystems.delete([probe])
    except Exception as error:  # permission, missing bucket, read-only filesystem, ...
        raise LaunchError(f"{flag}={prefix}: cannot write there: {first_line(error)}") from None


def first_record_width(path: str) -> int | None:
    """The value count of the first well-formed record near the start of a file, if any."""
    try:
        with open_input(path) as handle:  # compression from the file name, as the job reads it
            head = handle.read(_PROBE_BYTES)
    except Exception as error:  # a corrupt gzip, no permission, ...
        raise LaunchError(f"--input={path}: cannot read the file: {first_line(error)}") from None
    lines = head.split(b"\n")
    if len(head) == _PROBE_BYTES:
        lines.pop()  # possibly cut short
    return next((count for line in lines if (count := value_count(line)) is not None), None)
