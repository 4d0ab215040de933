"""Results survive the job's own failures: a run killed mid-way leaves the earlier run's output exactly as
it was, and a run that succeeds replaces it whole, leaving nothing of the earlier ones behind."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL

MAIN = ROOT / "template" / "main.py"
FINAL_SHARD = re.compile(r"predictions(_error_records)?-\d{5}-of-\d{5}\.jsonl")  # predictions and dead letters

pytestmark = pytest.mark.slow


def command(output_dir: Path, source: Path) -> list[str]:
    return [
        sys.executable,
        str(MAIN),
        f"--input={source}",
        f"--output={output_dir / 'predictions'}",
        f"--model={SAMPLE_MODEL}",
        "--batch_size=64",
    ]


def final_files(output_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(output_dir.iterdir()) if FINAL_SHARD.fullmatch(path.name)}


def sorted_keys(files: dict[str, bytes]) -> list[int]:
    lines = [line for name, data in files.items() if "_error_records" not in name for line in data.splitlines()]
    return sorted(int(line.split(b",", 1)[0].split(b":")[1]) for line in lines)


@pytest.fixture(scope="module")
def few_images(tmp_path_factory) -> Path:
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        lines = handle.read().splitlines()[:300]
    path = tmp_path_factory.mktemp("input") / "few.txt.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_a_killed_run_leaves_the_earlier_output_as_it_was_and_a_rerun_replaces_it_whole(tmp_path, few_images):
    output_dir = tmp_path / "out"
    subprocess.run(command(output_dir, few_images), check=True, capture_output=True, cwd=ROOT)
    first = final_files(output_dir)
    assert sorted_keys(first) == list(range(300))

    # Run 2, over all 10,000 images, is killed while it writes: its staging folder holds files.
    process = subprocess.Popen(
        command(output_dir, SAMPLE_IMAGES), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    deadline = time.monotonic() + 120
    while not any(output_dir.glob("beam-temp-predictions-*/**/*.*")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)  # well inside the write
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert final_files(output_dir) == first, "a killed run changed the earlier output"
    killed = list(output_dir.glob("beam-temp-predictions-*"))
    assert killed, "the kill came too late to test anything"

    # An earlier run's three shards, and the killed run's files aged past the idle hour: the rerun removes both.
    for index in range(3):
        (output_dir / f"predictions-{index:05d}-of-00003.jsonl").write_text('{"key": 99999}\n')
    (output_dir / "predictions-2024-00000-of-00001.jsonl").write_text("a longer prefix's\n")
    two_hours_ago = time.time() - 7200
    aged = ["predictions-*-of-00003.jsonl", "beam-temp-*", "beam-temp-*/**/*"]  # folders too: a local one's time counts
    for path in [path for pattern in aged for path in output_dir.glob(pattern)]:
        os.utime(path, (two_hours_ago, two_hours_ago))

    rerun = subprocess.run(command(output_dir, few_images), check=True, capture_output=True, text=True, cwd=ROOT)
    removed = "3 earlier shard(s) removed; 2 stale temp folder(s) removed"  # the killed run's two staging folders
    assert f"  earlier output       {removed}" in rerun.stdout
    assert sorted(final_files(output_dir)) == [
        "predictions-00000-of-00001.jsonl",
        "predictions_error_records-00000-of-00001.jsonl",
    ]
    assert sorted_keys(final_files(output_dir)) == sorted_keys(first)
    assert not list(output_dir.glob("beam-temp-*")), "the killed run's temp folder survived the rerun"
    assert (output_dir / "predictions-2024-00000-of-00001.jsonl").read_text() == "a longer prefix's\n"
