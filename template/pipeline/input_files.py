"""Opening input files through Beam's filesystems, decompressing in small steps.

Beam's CompressedFile reads 16 MiB of compressed data per step and decompresses all of it
before returning the first bytes: MNIST lines compress 14:1, so that is ~230 MB and 0.8 s
before the first record of every file (and of the launch-time look at its first record).
The same class with a 1 MiB step starts at once and streams just as fast.
"""

from __future__ import annotations

from typing import BinaryIO

from apache_beam.io.filesystem import CompressedFile, CompressionTypes
from apache_beam.io.filesystems import FileSystems

COMPRESSED_READ_STEP = 1 << 20


def open_input(path: str) -> BinaryIO:
    """The file's bytes, decompressed when its name says it is compressed (as Beam detects it)."""
    compression = CompressionTypes.detect_compression_type(path)
    raw = FileSystems.open(path, mime_type="application/octet-stream", compression_type=CompressionTypes.UNCOMPRESSED)
    if compression == CompressionTypes.UNCOMPRESSED:
        return raw
    return CompressedFile(raw, compression_type=compression, read_size=COMPRESSED_READ_STEP)
