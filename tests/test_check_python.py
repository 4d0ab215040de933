"""scripts/check_python.py: `make` refuses, in one line, an interpreter the locks were not made for."""

from __future__ import annotations

import subprocess
import sys

from scripts import check_python
from tests.conftest import ROOT


def test_the_interpreter_the_tests_run_on_is_accepted():
    result = subprocess.run([sys.executable, ROOT / "scripts" / "check_python.py"], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_another_machine_is_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(check_python.platform, "machine", lambda: "arm64")
    assert check_python.main() == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ") and "on linux arm64" in line and "PYTHON=/path/to/python3.11" in line
