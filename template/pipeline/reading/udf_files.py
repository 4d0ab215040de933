"""A UDF file's text, read once at launch through Beam's filesystems (a local path or gs://): the JobConfig
carries it to the workers, which never read it from storage themselves."""

from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.data.udf import UdfCode
from pipeline.errors import first_line

# A UDF file is code, carried in the job's graph to every worker: a file larger than this is not one.
MAX_UDF_BYTES = 1 << 20
_NOT_ONE_FILE = "is a pattern or a folder; give the path of one .py file"


class UdfFileError(Exception):
    """The UDF file cannot be read: missing, unreadable, too large, or not UTF-8 text. One line."""


def read_udf_file(path: str, before: str | None = None, after: str | None = None) -> UdfCode:
    """The file at `path` with the names of the functions run before and after the model."""
    try:
        matched = FileSystems.match([path])[0].metadata_list
    except Exception as error:  # Beam wraps filesystem errors in several types
        raise UdfFileError(f"cannot look for the file: {first_line(error)}") from None
    if not any(metadata.path.rstrip("/") == path.rstrip("/") for metadata in matched):
        raise UdfFileError("no such file" if not matched else _NOT_ONE_FILE)
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            data = handle.read(MAX_UDF_BYTES + 1)
    except IsADirectoryError:
        raise UdfFileError(_NOT_ONE_FILE) from None
    except Exception as error:  # permission, ...
        raise UdfFileError(f"cannot read the file: {first_line(error)}") from None
    if len(data) > MAX_UDF_BYTES:
        raise UdfFileError(f"is over {MAX_UDF_BYTES // (1 << 20)} MiB; a UDF file holds code, not data")
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UdfFileError(f"is not UTF-8 text (byte {error.start}): give a Python source file") from None
    return UdfCode(path, source, before, after)
