"""A UDF file read once at launch through Beam's filesystems, or refused in one line."""

from __future__ import annotations

import pytest

from pipeline.reading.udf_files import MAX_UDF_BYTES, UdfFileError, read_udf_file


def test_a_local_file_is_read_with_the_function_names(tmp_path):
    path = tmp_path / "udf.py"
    path.write_text("def prepare(record):\n    return record  # é\n")
    code = read_udf_file(str(path), "prepare", "finish")
    assert (code.path, code.before, code.after) == (str(path), "prepare", "finish")
    assert code.source == path.read_text()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.py", None, "no such file"),
        ("udf.py", b"\xff\xfe def", "is not UTF-8 text (byte 0): give a Python source file"),
        ("big.py", b"#" * (MAX_UDF_BYTES + 1), "is over 1 MiB; a UDF file holds code, not data"),
    ],
)
def test_what_is_no_readable_python_file_is_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UdfFileError) as raised:
        read_udf_file(str(path))
    assert str(raised.value) == message


def test_a_pattern_or_a_folder_is_no_file(tmp_path):
    (tmp_path / "a.py").write_text("")
    (tmp_path / "b.py").write_text("")
    for given in (str(tmp_path / "*.py"), str(tmp_path)):
        with pytest.raises(UdfFileError, match=r"is a pattern or a folder; give the path of one \.py file"):
            read_udf_file(given)
