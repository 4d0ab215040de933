"""Damaged input files, each alone and among good files: never read as if they were whole.

The policy (README, *Failure handling*): the records before the damage are predicted; the damage
is one dead letter (origin = the file, reason truncated_input / corrupt_input / checksum_mismatch,
the compressed byte offset in the message, the cut line as payload); the other files are predicted;
the local summary warns. A file with no readable record at all, given alone, is refused at launch.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from main import run
from scripts.check_image import summary_count
from tests.conftest import SAMPLE_MODEL

pytestmark = pytest.mark.slow

LINES_PER_FILE = 1500


@pytest.fixture(scope="module")
def sample_chunks(sample_lines) -> list[bytes]:
    """Three files' worth of the sample's lines, as file contents."""
    return [b"\n".join(sample_lines[i * LINES_PER_FILE : (i + 1) * LINES_PER_FILE]) + b"\n" for i in range(3)]


def damage(kind: str, data: bytes) -> bytes:
    good = gzip.compress(data)
    return {
        "truncated": good[: len(good) * 2 // 3],
        "no-trailer": good[:-8],
        "wrong-crc": good[:-8] + (zlib.crc32(data) ^ 1).to_bytes(4, "little") + good[-4:],
        "wrong-length": good[:-4] + (len(data) + 7).to_bytes(4, "little"),
        "not-gzip": b"this was never gzip\n" * 50,
        "zero-bytes": b"",
    }[kind]


REASONS = {
    "truncated": "truncated_input",
    "no-trailer": "truncated_input",
    "wrong-crc": "checksum_mismatch",
    "wrong-length": "checksum_mismatch",
    "not-gzip": "corrupt_input",
    "zero-bytes": "truncated_input",
}
UNREADABLE = {"not-gzip", "zero-bytes"}  # nothing at all can be read from these


def outcome(output: Path) -> tuple[list[dict], list[dict]]:
    def read(pattern: str) -> list[dict]:
        return [json.loads(line) for path in output.parent.glob(pattern) for line in path.read_text().splitlines()]

    return read(f"{output.name}-*.jsonl"), read(f"{output.name}_error_records-*.jsonl")


@pytest.mark.parametrize("kind", list(REASONS))
def test_a_damaged_file_alone(tmp_path, capfd, sample_chunks, kind):
    path = tmp_path / f"{kind}.txt.gz"
    path.write_bytes(damage(kind, sample_chunks[0]))
    output = tmp_path / "out" / "predictions"
    status = run([f"--input={path}", f"--output={output}", f"--model={SAMPLE_MODEL}"])
    captured = capfd.readouterr()
    if kind in UNREADABLE:
        assert status == 2
        error = captured.err.strip()
        assert error.startswith(f"error: --input={path}: cannot read the file: {path}: "), error
        assert len(error.splitlines()) == 1
        return
    assert status == 0, captured.err[-3000:]
    predictions, dead_letters = outcome(output)
    (letter,) = dead_letters
    assert letter["reason"] == REASONS[kind] and letter["origin"] == str(path)
    assert "compressed byte" in letter["errorMessage"]
    assert 0 < len(predictions) <= LINES_PER_FILE
    assert sorted(row["key"] for row in predictions) == list(range(len(predictions)))  # a prefix, nothing invented
    assert summary_count(captured.out, "predictions") == len(predictions)
    assert summary_count(captured.out, "dead letters") == 1
    assert f"WARNING: damaged input ({REASONS[kind]})" in captured.out
    assert "records read != predictions" not in captured.out


@pytest.mark.parametrize("kind", list(REASONS))
def test_a_damaged_file_among_good_ones(tmp_path, capfd, sample_chunks, kind):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt.gz").write_bytes(gzip.compress(sample_chunks[0]))
    (inputs / f"b-{kind}.txt.gz").write_bytes(damage(kind, sample_chunks[1]))
    (inputs / "c.txt.gz").write_bytes(gzip.compress(sample_chunks[2]))
    output = tmp_path / "out" / "predictions"
    status = run([f"--input={inputs}/*.txt.gz", f"--output={output}", f"--model={SAMPLE_MODEL}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    predictions, dead_letters = outcome(output)
    (letter,) = dead_letters
    assert letter["reason"] == REASONS[kind] and letter["origin"] == str(inputs / f"b-{kind}.txt.gz")
    keys = {row["key"] for row in predictions}
    assert set(range(LINES_PER_FILE)) <= keys and set(range(2 * LINES_PER_FILE, 3 * LINES_PER_FILE)) <= keys
    from_damaged = sorted(key for key in keys if LINES_PER_FILE <= key < 2 * LINES_PER_FILE)
    assert from_damaged == list(range(LINES_PER_FILE, LINES_PER_FILE + len(from_damaged)))
    assert len(from_damaged) < LINES_PER_FILE or kind in ("no-trailer",)
    assert f"WARNING: damaged input ({REASONS[kind]})" in captured.out
    assert "records read != predictions" not in captured.out
