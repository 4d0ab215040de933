"""The template image's self-check: the sample job, the help text and a launch error, run by this
Python exactly as the image runs them. Nothing is published that has not passed it.

Cloud Build runs it inside the freshly built image, before anything is pushed (cloudbuild.yaml,
step `check-image`):

    docker run --rm --network=none --entrypoint=python --volume=/workspace:/workspace IMAGE \\
        /workspace/scripts/check_image.py --main=/template/main.py --variant=cpu

and tests/test_cloudbuild.py runs the very same command with the project's venv against the image's
layout rebuilt from the Dockerfile (tests/image_layout.py). On a machine with a GPU and Docker,
`--require-gpu` also checks that TensorFlow sees the GPU (`docker run --gpus=all ...`).

Checks, one line each (exit status 0 when all pass, 1 otherwise):
  variant      TEMPLATE_VARIANT in the environment is the one asked for (--variant)
  help         `main.py --help` exits 0 and documents the required parameters
  launch error a misspelt parameter exits 2 with one line on stderr, starting with `error:`
  sample job   the 10,000 sample records on DirectRunner: every one predicted, no dead letters
  accuracy     `python -m pipeline.evaluate` on the held-out keys 8000..9999 (as `make demo`), >= 99%
  gpu          (--require-gpu) TensorFlow lists at least one GPU
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
HELD_OUT_KEYS = "8000:9999"
BAD_PARAMETER = "--batchsize=64"  # a near miss of --batch_size: refused before any work starts


class CheckFailed(Exception):
    pass


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess:
    print("  $ " + " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)


def tail(result: subprocess.CompletedProcess, chars: int = 3000) -> str:
    return f"\n--- stdout ---\n{result.stdout[-chars:]}\n--- stderr ---\n{result.stderr[-chars:]}"


def summary_count(stdout: str, label: str) -> int:
    """A count from main.py's run summary, e.g. `  predictions              10,000`."""
    match = re.search(rf"^\s*{re.escape(label)}\s+([\d,]+)\s*$", stdout, re.M)
    if not match:
        raise CheckFailed(f"the summary has no '{label}' line")
    return int(match.group(1).replace(",", ""))


def jsonl_lines(pattern: str, folder: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in folder.glob(pattern))


class ImageCheck:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.main = Path(args.main).resolve()
        self.template_dir = self.main.parent  # the launcher's working directory: the image's WORKDIR
        self.samples = Path(args.samples).resolve()
        self.work = work
        self.args = args
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.template_dir), os.environ.get("PYTHONPATH")]))

    def main_py(self, *arguments: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        return run([sys.executable, str(self.main), *arguments], self.template_dir, self.env, timeout_s)

    def variant(self) -> str:
        found = os.environ.get("TEMPLATE_VARIANT")
        if found != self.args.variant:
            raise CheckFailed(f"TEMPLATE_VARIANT is {found!r}, expected {self.args.variant!r}")
        return f"TEMPLATE_VARIANT={found}"

    def help(self) -> str:
        result = self.main_py("--help")
        if result.returncode != 0:
            raise CheckFailed(f"exit status {result.returncode}" + tail(result))
        missing = [flag for flag in ("--input", "--output", "--model") if flag not in result.stdout]
        if missing:
            raise CheckFailed(f"the help text does not mention {', '.join(missing)}" + tail(result))
        return "exit 0, documents --input, --output and --model"

    def launch_error(self) -> str:
        result = self.main_py(*self.sample_parameters(self.work / "refused" / "predictions"), BAD_PARAMETER)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if result.returncode != 2 or len(lines) != 1 or not lines[0].startswith("error:"):
            raise CheckFailed(
                f"{BAD_PARAMETER}: expected exit status 2 and one stderr line starting with 'error:', got exit "
                f"status {result.returncode} and {len(lines)} line(s)" + tail(result)
            )
        if (self.work / "refused").exists():
            raise CheckFailed("the refused launch wrote output")
        return f"exit 2, one line: {lines[0]}"

    def sample_parameters(self, output: Path) -> list[str]:
        return [
            f"--input={self.samples / 'mnist/images.txt.gz'}",
            f"--output={output}",
            f"--model={self.samples / 'model'}",
            "--runner=DirectRunner",
        ]

    def sample_job(self) -> str:
        with gzip.open(self.samples / "mnist/images.txt.gz", "rb") as handle:
            records = sum(1 for line in handle if line.strip())
        output = self.work / "out" / "predictions"
        started = time.monotonic()
        result = self.main_py(*self.sample_parameters(output), timeout_s=self.args.timeout)
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            raise CheckFailed(f"exit status {result.returncode}" + tail(result))
        counts = {
            label: summary_count(result.stdout, label) for label in ("records read", "predictions", "dead letters")
        }
        written = jsonl_lines("predictions-*.jsonl", output.parent)
        dead = jsonl_lines("predictions_error_records-*.jsonl", output.parent)
        expected = {"records read": records, "predictions": records, "dead letters": 0}
        if counts != expected or (written, dead) != (records, 0):
            raise CheckFailed(
                f"expected every one of the {records:,} records predicted: summary {counts}, "
                f"{written:,} prediction lines and {dead:,} dead-letter lines written" + tail(result)
            )
        return f"{records:,} records read, {written:,} predictions written, 0 dead letters ({elapsed:.1f} s)"

    def accuracy(self) -> str:
        predictions = self.work / "out" / "predictions-*.jsonl"
        result = run(
            [
                sys.executable,
                "-m",
                "pipeline.evaluate",
                f"--predictions={predictions}",
                f"--labels={self.samples / 'mnist/t10k-labels-idx1-ubyte.gz'}",
                f"--keys={HELD_OUT_KEYS}",
            ],
            self.template_dir,
            self.env,
            120,
        )
        line = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        match = re.search(r"\(([\d,]+) of ([\d,]+) correct; ([\d,]+) labelled keys without a prediction\)", line)
        if result.returncode != 0 or not match:
            raise CheckFailed(f"exit status {result.returncode}, no accuracy line" + tail(result))
        correct, evaluated, missing = (int(group.replace(",", "")) for group in match.groups())
        first, last = (int(key) for key in HELD_OUT_KEYS.split(":"))
        if evaluated != last - first + 1 or missing or correct / evaluated < self.args.min_accuracy:
            raise CheckFailed(f"{line} (expected every held-out key, at least {self.args.min_accuracy:.0%})")
        return line

    def gpu(self) -> str:
        code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
        result = run([sys.executable, "-c", code], self.template_dir, self.env, 120)
        found = result.stdout.strip().splitlines()[-1:] if result.returncode == 0 else []
        if not found or not found[0].isdigit() or int(found[0]) < 1:
            raise CheckFailed("TensorFlow sees no GPU" + tail(result))
        return f"TensorFlow sees {found[0]} GPU(s)"

    def checks(self):
        checks = []
        if self.args.variant:
            checks.append(("variant", self.variant))
        checks += [
            ("help", self.help),
            ("launch error", self.launch_error),
            ("sample job", self.sample_job),
            ("accuracy", self.accuracy),
        ]
        if self.args.require_gpu:
            checks.append(("gpu", self.gpu))
        return checks


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--main", required=True, help="the template's main.py (/template/main.py in the image)")
    parser.add_argument("--variant", choices=("cpu", "gpu"), help="expected TEMPLATE_VARIANT of the image")
    parser.add_argument(
        "--samples", default=str(SAMPLES), help="the repository's samples folder (default: %(default)s)"
    )
    parser.add_argument("--work-dir", help="where the runs write (default: a temporary folder, removed afterwards)")
    parser.add_argument("--min-accuracy", type=float, default=0.99, help="on keys 8000..9999 (default: %(default)s)")
    parser.add_argument("--require-gpu", action="store_true", help="also require TensorFlow to see a GPU")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the sample job (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="check-image-"))
    work.mkdir(parents=True, exist_ok=True)
    check = ImageCheck(args, work)
    print(f"Checking the template image: {sys.executable}, {check.main}, samples {check.samples}", flush=True)
    failed = []
    try:
        for name, function in check.checks():
            try:
                detail = function()
            except (CheckFailed, subprocess.TimeoutExpired, OSError) as error:
                failed.append(name)
                print(f"FAIL  {name}: {error}", flush=True)
            else:
                print(f"ok    {name}: {detail}", flush=True)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        print(f"image check FAILED: {', '.join(failed)}")
        return 1
    print("image check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
