"""Damaged input files, each alone and among good files: never read as if they were whole.

The policy (README, *Failure handling*): the records before the damage are predicted; the damage
is one dead letter (origin = the file, reason truncated_input / corrupt_input / checksum_mismatch,
the compressed byte offset in the message, the cut line as payload); the other files are predicted;
the local summary warns. A file with no readable record at all, given alone, is refused at launch.
"""

from __future__ import annotations

import gzip

import pytest

from main import run
from scripts.check_image import summary_count
from tests.conftest import SAMPLE_MODEL
from tests.damage import REASONS, UNREADABLE, damaged
from tests.outputs import predictions_and_dead_letters

pytestmark = pytest.mark.slow

LINES_PER_FILE = 1500


@pytest.fixture(scope="module")
def sample_chunks(sample_lines) -> list[bytes]:
    """Three files' worth of the sample's lines, as file contents."""
    return [b"\n".join(sample_lines[i * LINES_PER_FILE : (i + 1) * LINES_PER_FILE]) + b"\n" for i in range(3)]


# Each way a gzip file is found damaged; a file cut short before its trailer, and one with no member at all.
KINDS = ["truncated", "no-trailer", "wrong-crc", "wrong-length", "not-gzip", "zero-bytes"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_file_alone(tmp_path, capfd, sample_chunks, kind):
    path = tmp_path / f"{kind}.txt.gz"
    path.write_bytes(damaged(kind, sample_chunks[0]))
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
    predictions, dead_letters = predictions_and_dead_letters(output)
    (letter,) = dead_letters
    assert letter["reason"] == REASONS[kind] and letter["origin"] == str(path)
    assert "compressed byte" in letter["errorMessage"]
    assert 0 < len(predictions) <= LINES_PER_FILE
    assert sorted(row["key"] for row in predictions) == list(range(len(predictions)))  # a prefix, nothing invented
    assert summary_count(captured.out, "predictions") == len(predictions)
    assert summary_count(captured.out, "dead letters") == 1
    assert f"WARNING: damaged input ({REASONS[kind]})" in captured.out
    assert "records read != predictions" not in captured.out


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_file_among_good_ones(tmp_path, capfd, sample_chunks, kind):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt.gz").write_bytes(gzip.compress(sample_chunks[0]))
    (inputs / f"b-{kind}.txt.gz").write_bytes(damaged(kind, sample_chunks[1]))
    (inputs / "c.txt.gz").write_bytes(gzip.compress(sample_chunks[2]))
    output = tmp_path / "out" / "predictions"
    status = run([f"--input={inputs}/*.txt.gz", f"--output={output}", f"--model={SAMPLE_MODEL}"])
    captured = capfd.readouterr()
    assert status == 0, captured.err[-3000:]
    predictions, dead_letters = predictions_and_dead_letters(output)
    (letter,) = dead_letters
    assert letter["reason"] == REASONS[kind] and letter["origin"] == str(inputs / f"b-{kind}.txt.gz")
    keys = {row["key"] for row in predictions}
    assert set(range(LINES_PER_FILE)) <= keys and set(range(2 * LINES_PER_FILE, 3 * LINES_PER_FILE)) <= keys
    from_damaged = sorted(key for key in keys if LINES_PER_FILE <= key < 2 * LINES_PER_FILE)
    assert from_damaged == list(range(LINES_PER_FILE, LINES_PER_FILE + len(from_damaged)))
    assert len(from_damaged) < LINES_PER_FILE or kind in ("no-trailer",)
    assert f"WARNING: damaged input ({REASONS[kind]})" in captured.out
    assert "records read != predictions" not in captured.out
