"""Input files open through Beam's filesystems, decompress as Beam would, and never pass damage off as an end."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import random

import pytest

from pipeline.errors import DamagedInput
from pipeline.reading.input_files import COMPRESSED_READ_STEP, open_input
from tests.damage import REASONS, damaged


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


LINES = b"".join(b"%d:%s\n" % (key, b"0.25," * 40 + b"1") for key in range(20_000))


def file_name(kind: str) -> str:
    return "truncated.bz2" if kind == "truncated-bz2" else f"{kind}.gz"


@pytest.mark.parametrize("kind", list(REASONS))
def test_damage_is_reported_after_the_bytes_before_it(tmp_path, kind):
    blob, reason = damaged(kind, LINES), REASONS[kind]
    path = tmp_path / file_name(kind)
    path.write_bytes(blob)
    chunks = []
    with pytest.raises(DamagedInput) if reason else contextlib.nullcontext() as caught, open_input(str(path)) as handle:
        while chunk := handle.read(1 << 16):
            chunks.append(chunk)
    decoded = b"".join(chunks)
    assert LINES.startswith(decoded)
    if reason is None:
        assert decoded == LINES
        return
    damage = caught.value
    assert damage.reason == reason and damage.path == str(path)
    assert damage.decoded == len(decoded) and 0 <= damage.offset <= len(blob)
    assert str(path) in str(damage) and "\n" not in str(damage)
    if kind.startswith("truncated"):
        assert 0 < len(decoded) < len(LINES)  # everything before the cut is delivered


def test_bytes_read_from_storage_are_counted(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(LINES))
    counted = []
    with open_input(str(path), on_bytes=counted.append) as handle:
        while handle.read(1 << 16):
            pass
    assert sum(counted) == path.stat().st_size


def test_damage_in_a_later_member_is_placed_inside_that_member(tmp_path):
    first, second = gzip.compress(LINES[:100_000]), bytearray(gzip.compress(LINES[100_000:]))
    middle = len(second) // 5
    second[middle : middle + 50] = bytes(range(50))  # damage that still decodes, to be caught by the check
    path = tmp_path / "members.gz"
    path.write_bytes(first + second)
    with pytest.raises(DamagedInput) as caught, open_input(str(path)) as handle:
        while handle.read(1 << 16):
            pass
    assert len(first) < caught.value.offset <= path.stat().st_size
