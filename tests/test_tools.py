"""A missing tool skips its tests here and fails them where CI is set (tests/tools.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.tools import in_ci, require_tool

NEEDY_TESTS = """
import pytest
from tests.tools import require_tool, requires_tool

@pytest.fixture
def never_set_up():
    raise AssertionError("a fixture ran before the missing tool was noticed")

@requires_tool(False, "no frobnicator: the module's tests cannot run")
def test_marked(never_set_up):
    pass

def test_in_the_body():
    require_tool(False, "no frobnicator: the module's tests cannot run")
"""


@pytest.mark.parametrize(
    ("value", "ci"), [(None, False), ("", False), ("false", False), ("0", False), ("true", True), ("1", True)]
)
def test_ci_is_any_value_but_empty_0_or_false(monkeypatch, value, ci):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_present_tool_is_no_matter(monkeypatch):
    monkeypatch.setenv("CI", "true")
    require_tool(True, "never said")


@pytest.mark.parametrize(("ci", "outcome"), [(None, "2 skipped"), ("true", "1 failed, 1 error")])
def test_a_missing_tool_skips_its_tests_and_fails_them_in_ci(tmp_path, ci, outcome):
    """Both as a mark, before any fixture is set up, and as a call; the reason is said either way."""
    (tmp_path / "test_needy.py").write_text(NEEDY_TESTS)
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    env.update(PYTHONPATH=str(ROOT), **({"CI": ci} if ci else {}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.tools",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:bqemulator",
            "-rsfE",
            "test_needy.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.splitlines()[-1].strip("= ").split(" in ")[0] == outcome, result.stdout + result.stderr
    assert "no frobnicator: the module's tests cannot run" in result.stdout, result.stdout
    assert "a fixture ran" not in result.stdout
    if ci:
        assert "CI is set: a missing tool fails the run" in result.stdout
