"""The README's local quickstart, run as written: `make demo`, whose output must be what the README
shows (the same lines in the same order; timings differ, the held-out accuracy does not); then the
docs' evaluation command on its output."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.readme import README, commands_starting_with

pytestmark = pytest.mark.slow

DEMO = commands_starting_with("make demo", README.read_text())
EVALUATE = commands_starting_with("PYTHONPATH=template .venv/bin/python -m pipeline.evaluate")


def shown_demo_output() -> list[str]:
    """The plain code block that follows the README's `make demo` block."""
    text = README.read_text()
    block_of_the_command = "```sh\nmake demo\n```\n"
    after = text[text.index(block_of_the_command) + len(block_of_the_command) :]
    (block,) = re.findall(r"^```\n(.*?)^```", after, re.M | re.S)[:1]
    return block.splitlines()


def label(line: str) -> str:
    """A summary line without its figures: 'records read', 'model loaded in', 'Accuracy on keys'."""
    return re.split(r"\s+[\d(]|\s{2,}", line.strip())[0]


def test_make_demo_prints_what_the_readme_shows():
    assert DEMO == ["make demo"]
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    result = subprocess.run(DEMO[0].split(), cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    printed = [line for line in result.stdout.splitlines() if line.strip()]
    shown = shown_demo_output()
    labels = [label(line) for line in printed]
    positions = [labels.index(label(line)) for line in shown]  # every line the README shows is printed ...
    assert positions == sorted(positions), (shown, printed)  # ... in the README's order
    accuracy = [line for line in shown if line.startswith("Accuracy")]
    assert accuracy and accuracy[0] in printed, (accuracy, printed)

    (evaluate,) = EVALUATE  # the docs' evaluation of the demo's run, as make demo does it
    argv = shlex.split(evaluate.removeprefix("PYTHONPATH=template "))
    environment["PYTHONPATH"] = str(ROOT / "template")
    result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == accuracy[0], result.stdout + result.stderr
