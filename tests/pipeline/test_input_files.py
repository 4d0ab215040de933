"""Input files open through Beam's filesystems and decompress exactly as Beam would."""

from __future__ import annotations

import bz2
import gzip
import random

from pipeline.input_files import COMPRESSED_READ_STEP, open_input


def read_all(path: str, step: int = 1 << 16) -> bytes:
    chunks = []
    with open_input(path) as handle:
        while chunk := handle.read(step):
            chunks.append(chunk)
    return b"".join(chunks)


def test_compression_is_detected_from_the_name_and_streams_in_small_steps(tmp_path):
    data = random.Random(1).randbytes(3 * COMPRESSED_READ_STEP)  # incompressible
    assert len(gzip.compress(data)) > 2 * COMPRESSED_READ_STEP  # several decompression steps
    (tmp_path / "a.txt").write_bytes(data)
    (tmp_path / "a.txt.gz").write_bytes(gzip.compress(data))
    (tmp_path / "a.txt.bz2").write_bytes(bz2.compress(data))
    for name in ("a.txt", "a.txt.gz", "a.txt.bz2"):
        assert read_all(str(tmp_path / name)) == data, name


def test_concatenated_gzip_members_read_as_one_file(tmp_path):
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"1:0\n") + gzip.compress(b"2:0\n"))
    assert read_all(str(tmp_path / "b.gz")) == b"1:0\n2:0\n"
