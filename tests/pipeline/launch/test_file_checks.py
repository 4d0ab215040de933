"""Launch-time checks of files: what the first record says, where outputs can go."""

from __future__ import annotations

import gzip

import pytest

from pipeline.errors import LaunchError
from pipeline.launch.file_checks import check_writable, first_batch, first_record_width, matching_files


def test_first_record_width_skips_blank_and_broken_lines_and_reads_gzip(tmp_path):
    path = tmp_path / "in.txt.gz"
    path.write_bytes(gzip.compress(b"\n  \nno key\n7:1,2,3\n8:1,2\n"))
    assert first_record_width(first_batch(matching_files(str(path)), "key_values")) == 3
    (tmp_path / "junk.txt").write_bytes(b"\xff\xfe\n\n")
    assert first_record_width(first_batch(matching_files(str(tmp_path / "junk.txt")), "key_values")) is None


def test_first_batch_passes_over_damaged_files_and_refuses_only_when_none_can_be_read(tmp_path):
    (tmp_path / "a.txt.gz").write_bytes(b"not gzip")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(b"7:1,2\n"))
    assert first_batch(matching_files(str(tmp_path / "*.gz")), "key_values").payloads == [b"7:1,2"]
    with pytest.raises(LaunchError, match=r"a\.txt\.gz: cannot read the file: .*not a valid gzip stream"):
        first_batch(matching_files(str(tmp_path / "a.txt.gz")), "key_values")
    (tmp_path / "empty.txt").write_bytes(b"")
    assert first_batch(matching_files(str(tmp_path / "empty.txt")), "key_values") is None


def test_matching_files_are_sorted_and_nothing_is_an_error(tmp_path):
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "a.txt").write_text("x")
    matched = matching_files(str(tmp_path / "*.txt"))
    assert [metadata.path for metadata in matched] == [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    assert [metadata.size_in_bytes for metadata in matched] == [1, 1]
    with pytest.raises(LaunchError, match="no file matches"):
        matching_files(str(tmp_path / "*.csv"))


def test_check_writable_leaves_nothing_behind(tmp_path):
    check_writable("--output", str(tmp_path / "out" / "predictions"))
    assert list((tmp_path / "out").iterdir()) == []
