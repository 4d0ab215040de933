"""A UDF file compiled and run once per process, its functions found, and what it raises told as the user's
file, line and function."""

from __future__ import annotations

import linecache
import pickle
import traceback

import pytest

from pipeline.data import udf
from pipeline.data.udf import UdfCode, UdfLoadError, describe, excerpt, function_of, load

SOURCE = """\
from dataclasses import dataclass

CALLS = []


@dataclass
class Point:
    x: float


def double(record):
    CALLS.append(record)
    return {"x": Point(record["x"]).x * 2}


def helper(record):
    return record["island"]


def prepare(record):
    return helper(record)


LIMIT = 3
"""


def code(source: str = SOURCE, path: str = "gs://bucket/udf/prepare.py", **names) -> UdfCode:
    return UdfCode(path, source, **names)


def test_the_file_runs_once_per_process_for_the_same_source():
    first = load(code())
    assert load(code(before="double")) is first  # the same file, other names: the same module
    function_of(code(), "double")({"x": 1.5})
    assert function_of(code(), "double")({"x": 2}) == {"x": 4}
    assert len(first.CALLS) == 2
    changed = load(code(SOURCE + "\nLIMIT = 4\n"))
    assert changed is not first and changed.LIMIT == 4


def test_a_dataclass_of_the_file_works_as_in_an_imported_module():
    assert function_of(code(), "double")({"x": 1.25}) == {"x": 2.5}


def test_the_digest_is_of_the_source_and_the_code_pickles_with_it():
    one = code()
    assert one.digest == code(path="other.py").digest != code(SOURCE + " ").digest
    assert pickle.loads(pickle.dumps(one)) == one


def test_a_syntax_error_is_one_line_with_the_files_line():
    with pytest.raises(UdfLoadError) as raised:
        load(code("def prepare(record):\n    return record[\n", path="broken.py"))
    message = str(raised.value)
    assert message.startswith("broken.py:2: SyntaxError: ") and "\n" not in message


def test_what_the_file_raises_when_run_names_its_line_and_an_import_says_what_the_image_has():
    with pytest.raises(UdfLoadError) as raised:
        load(code("import os\nimport not_in_the_image_at_all\n", path="imports.py"))
    message = str(raised.value)
    assert "imports.py:2 in <module>: ModuleNotFoundError: No module named 'not_in_the_image_at_all'" in message
    assert "numpy" in message and "tensorflow" in message
    assert "imports.py" in raised.value.stacktrace
    with pytest.raises(UdfLoadError, match=r"fails.py:1 in <module>: ZeroDivisionError"):
        load(code("1 / 0\n", path="fails.py"))


def test_a_missing_function_names_those_the_file_defines_and_a_value_is_no_function():
    with pytest.raises(UdfLoadError, match=r"has no function 'prepar'; it defines double, helper, prepare$"):
        function_of(code(), "prepar")
    with pytest.raises(UdfLoadError, match=r"'LIMIT' is a int, not a function"):
        function_of(code(), "LIMIT")


def test_an_exception_names_the_innermost_line_of_the_file_and_keeps_the_trace_from_the_users_frames():
    prepare = function_of(code(), "prepare")
    try:
        prepare({"species": "Adelie"})
    except KeyError as error:
        failure = describe(error, "gs://bucket/udf/prepare.py", "prepare")
    assert failure.message == "gs://bucket/udf/prepare.py:17 in helper: KeyError: 'island'"
    assert "test_udf.py" not in failure.stacktrace  # the caller's frames are not the user's
    assert "line 21, in prepare" in failure.stacktrace and 'return record["island"]' in failure.stacktrace


def test_the_source_is_in_linecache_so_tracebacks_show_lines_of_a_gs_file():
    load(code())
    assert linecache.getline("gs://bucket/udf/prepare.py", 17).strip() == 'return record["island"]'
    try:
        function_of(code(), "helper")({})
    except KeyError:
        assert 'return record["island"]' in traceback.format_exc()


def test_a_function_that_is_not_in_the_file_is_described_by_its_name():
    failure = describe(ValueError("bad"), "udf.py", "prepare")
    assert failure.message == "udf.py in prepare: ValueError: bad"


def test_an_excerpt_says_the_type_and_the_start_of_the_value():
    assert excerpt("abc") == "str 'abc'"
    assert excerpt(list(range(100))).startswith("list [0, 1, 2") and excerpt(list(range(100))).endswith("...")


def test_the_image_packages_are_named():
    assert {"numpy", "tensorflow", "pyarrow", "apache_beam"} <= set(udf.IMAGE_PACKAGES)
