"""No partial results: a killed run leaves nothing that looks complete, and a rerun is whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL

MAIN = ROOT / "template" / "main.py"
FINAL_SHARDS = "predictions-*-of-*.jsonl"

pytestmark = pytest.mark.slow


def command(output_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(MAIN),
        f"--input={SAMPLE_IMAGES}",
        f"--output={output_dir / 'predictions'}",
        f"--model={SAMPLE_MODEL}",
        "--batch_size=64",
    ]


def sorted_prediction_lines(output_dir: Path) -> list[bytes]:
    lines = [line for path in output_dir.glob(FINAL_SHARDS) for line in path.read_bytes().splitlines()]
    return sorted(lines, key=lambda line: int(line.split(b",", 1)[0].split(b":")[1]))


def test_killed_run_leaves_no_final_files_and_rerun_is_complete_and_identical(tmp_path):
    output_dir = tmp_path / "out"
    process = subprocess.Popen(command(output_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not any(output_dir.glob("beam-temp-predictions-*/*")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the write, before finalisation
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(output_dir.glob(FINAL_SHARDS)), "a killed run left final-looking prediction files"
    assert list(output_dir.glob("beam-temp-*")), "the kill came too late to test anything"

    subprocess.run(command(output_dir), check=True, capture_output=True, cwd=ROOT)
    assert not list(output_dir.glob("beam-temp-*/*")), "temp files of the killed run survived the rerun"
    first = sorted_prediction_lines(output_dir)
    assert len(first) == 10_000
    assert [int(line.split(b",", 1)[0].split(b":")[1]) for line in first] == list(range(10_000))

    subprocess.run(command(output_dir), check=True, capture_output=True, cwd=ROOT)
    assert sorted_prediction_lines(output_dir) == first
