"""`make bench-memory`: one model copy per SDK process against one per VM, with a large model, in one run.

The large model is scripts/make_large_model.py's (a 281.5 MB MLP over the sample images; made under
build/ if missing). First, in a process of its own, what loading it costs: the growth of a process's
peak RSS over its size on disk (the load factor of `pipeline.model.memory`), and what a process that
has imported Beam and TensorFlow holds before any model. Then the pipeline runs as a user runs it
(`template/main.py`, Beam's local runner in two SDK worker processes, `--direct_running_mode=multi_processing`,
as Dataflow runs one per vCPU) over the same records, split in 4 files so that both processes get
work, once with `--model_copies=per_process` and once with `per_vm`, rounds interleaved. The memory of
the whole process tree (the launcher and its worker processes) is sampled every 0.1 s: the peak of the
sum of the processes' RSS, and of their PSS (which counts shared library pages once). The predictions
of both layouts are compared, record by record.

    python benchmarks/model_memory.py [--records N] [--rounds N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BENCH = ROOT / "build" / "bench" / "model_memory"
LARGE_MODEL = ROOT / "build" / "large_model"
SAMPLE_IMAGES = ROOT / "samples/mnist/images.txt.gz"
FILES = 4
LAYOUTS = ("per_process", "per_vm")
SAMPLE_S = 0.1

# Run in a fresh process: the RSS of a process that has imported what a worker imports, then the growth of
# its peak RSS (VmHWM, reset after the imports) when it loads the model and scores one batch.
_LOAD_COST = """
import json, sys
sys.path.insert(0, sys.argv[2])
import numpy as np
def memory():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
import apache_beam
from pipeline.model.runtime import import_tensorflow
import_tensorflow()
from pipeline.model.files import locate_model
from pipeline.model.loading import load_model
from pipeline.model.memory import files_bytes
location = locate_model(sys.argv[1])
batch = np.random.default_rng(0).random((256, 28, 28, 1), dtype=np.float32)
base, _ = memory()
open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM to the current RSS
load_model(location.path, location).predict({"image": batch})
rss, peak = memory()
print(json.dumps({"base": base, "rss": rss, "peak": peak, "size": files_bytes(location)}))
"""


@dataclass
class Run:
    layout: str
    wall_s: float
    records: int
    first_prediction_s: float
    peak_rss_sum: int  # the whole tree: the launcher and its SDK worker processes
    peak_pss_sum: int
    peak_workers_rss: int  # the SDK worker processes alone: what a worker VM holds
    peak_workers_pss: int
    worker_peaks: list[int]  # the peak RSS of each SDK worker process, largest first
    launcher_rss: int
    cpu_s: float  # user + system seconds of the whole tree, as last sampled from each process
    keys_scores: dict[int, list[float]] = field(default_factory=dict, repr=False)

    @property
    def steady_per_s(self) -> float:
        return self.records / max(self.wall_s - self.first_prediction_s, 1e-9)

    @property
    def end_to_end_per_s(self) -> float:
        return self.records / self.wall_s


def prepare(records: int, model: Path) -> Path:
    """The sample images replicated to `records` lines with fresh keys, in FILES uncompressed files (and the
    large model made, if it is the one measured and missing)."""
    if model == LARGE_MODEL and not (LARGE_MODEL / "saved_model.pb").exists():
        subprocess.run([PYTHON, str(ROOT / "scripts/make_large_model.py"), "--export", str(LARGE_MODEL)], check=True)
    folder = BENCH / f"images{records}"
    if not folder.exists():
        with gzip.open(SAMPLE_IMAGES, "rb") as handle:
            lines = handle.read().splitlines()
        folder.mkdir(parents=True)
        per_file = -(-records // FILES)
        for part in range(FILES):
            out = [
                str(key).encode() + b":" + lines[key % len(lines)].partition(b":")[2]
                for key in range(part * per_file, min(records, (part + 1) * per_file))
            ]
            (folder / f"part-{part}.txt").write_bytes(b"\n".join(out) + b"\n")
    return folder


def load_cost(model: Path) -> dict:
    child = subprocess.run(
        [PYTHON, "-c", _LOAD_COST, str(model), str(ROOT / "template")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; (0, 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line and not line.startswith(" "))
        return int(fields["Rss"].split()[0]) * 1024, int(fields["Pss"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return 0, 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _is_sdk_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return any(b"sdk_worker_main" in arg for arg in argv) and not argv[0].endswith(b"sh")


def run_layout(layout: str, data: Path, out: Path, model: Path) -> Run:
    """The pipeline in two SDK worker processes with one layout, its process tree sampled as it runs."""
    command = [
        PYTHON,
        "template/main.py",
        f"--input={data}/part-*.txt",
        f"--output={out}",
        f"--model={model}",
        f"--model_copies={layout}",
        "--statistics=off",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = dict.fromkeys(("rss", "pss", "workers_rss", "workers_pss", "launcher"), 0)
    worker_peaks: dict[int, int] = {}
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            measured = {pid: _memory(pid) for pid in _descendants(process.pid)}
            workers = {pid: memory for pid, memory in measured.items() if pid != process.pid}
            for name, value in (
                ("rss", sum(rss for rss, _ in measured.values())),
                ("pss", sum(pss for _, pss in measured.values())),
                ("workers_rss", sum(rss for rss, _ in workers.values())),
                ("workers_pss", sum(pss for _, pss in workers.values())),
                ("launcher", measured.get(process.pid, (0, 0))[0]),
            ):
                peaks[name] = max(peaks[name], value)
            for pid in measured:
                cpu[pid] = max(cpu.get(pid, 0.0), _cpu_s(pid))
            for pid, (rss, _) in workers.items():
                if _is_sdk_worker(pid):  # not the shells Beam starts them through
                    worker_peaks[pid] = max(worker_peaks.get(pid, 0), rss)
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{layout} failed:\n{stderr[-3000:]}")
    if f"model copies         one per {'VM' if layout == 'per_vm' else 'process'}" not in stdout:
        raise SystemExit(f"{layout}: the summary does not say the layout asked for:\n{stdout}")
    scores = {}
    for shard in sorted(out.parent.glob(f"{out.name}-*.jsonl")):
        for line in shard.read_text().splitlines():
            row = json.loads(line)
            scores[row["key"]] = [row[f"pred{digit}"] for digit in range(10)]
    return Run(
        layout,
        wall,
        int(_summary(stdout, "records read")),
        _summary(stdout, "first prediction"),
        peaks["rss"],
        peaks["pss"],
        peaks["workers_rss"],
        peaks["workers_pss"],
        sorted(worker_peaks.values(), reverse=True),
        peaks["launcher"],
        sum(cpu.values()),
        scores,
    )


def _summary(stdout: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d,.]+)", stdout)
    if match is None:
        raise SystemExit(f"no '{label}' in the summary:\n{stdout}")
    return float(match.group(1).replace(",", ""))


def _mb(size: float) -> str:
    return f"{size / (1 << 20):,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", type=Path, default=LARGE_MODEL, help="another model over the sample images")
    args = parser.parse_args()
    model = args.model.resolve()
    data = prepare(args.records, model)
    cost = load_cost(model)
    peak_factor, steady_factor = (
        (cost["peak"] - cost["base"]) / cost["size"],
        (cost["rss"] - cost["base"]) / cost["size"],
    )
    print(
        f"model: {model}, {_mb(cost['size'])} MB on disk; a process with Beam and TensorFlow "
        f"imported holds {_mb(cost['base'])} MB; loading the model and scoring one batch raises its peak RSS by "
        f"{_mb(cost['peak'] - cost['base'])} MB ({peak_factor:.2f}x its size; {steady_factor:.2f}x stays)",
        flush=True,
    )
    runs: dict[str, list[Run]] = {layout: [] for layout in LAYOUTS}
    for round_number in range(args.rounds):
        for layout in LAYOUTS if round_number % 2 == 0 else reversed(LAYOUTS):
            out = BENCH / "out" / layout / "predictions"
            for stale in out.parent.glob("*") if out.parent.exists() else ():
                stale.unlink()
            run = run_layout(layout, data, out, model)
            runs[layout].append(run)
            print(
                f"round {round_number + 1} {layout}: {run.records:,} records in {run.wall_s:.1f} s, "
                f"{run.steady_per_s:,.0f}/s steady; peak RSS summed over the SDK worker processes "
                f"{_mb(run.peak_workers_rss)} MB ({_mb(run.peak_workers_pss)} MB PSS), with the launcher "
                f"{_mb(run.peak_rss_sum)} MB; each worker process "
                f"{', '.join(_mb(peak) for peak in run.worker_peaks)} MB",
                flush=True,
            )
    first, second = runs["per_process"][-1].keys_scores, runs["per_vm"][-1].keys_scores
    if sorted(first) != list(range(args.records)) or sorted(second) != list(range(args.records)):
        raise SystemExit("a layout did not predict every record once")
    worst = max(abs(a - b) for key in first for a, b in zip(first[key], second[key], strict=True))
    print(f"predictions: {args.records:,} records in each layout, largest difference between layouts {worst:.1e}")

    def median(layout: str, value) -> float:
        return statistics.median(value(run) for run in runs[layout])

    rows = [
        ("records/s end to end", lambda run: run.end_to_end_per_s, "{:,.0f}"),
        ("records/s steady (after the first prediction)", lambda run: run.steady_per_s, "{:,.0f}"),
        ("first prediction, s after start", lambda run: run.first_prediction_s, "{:.1f}"),
        ("CPU s per 1,000 records, whole tree", lambda run: run.cpu_s / run.records * 1000, "{:.2f}"),
        (
            "peak RSS summed over the 2 SDK worker processes, MB",
            lambda run: run.peak_workers_rss / (1 << 20),
            "{:,.0f}",
        ),
        (
            "peak PSS summed over the 2 SDK worker processes, MB",
            lambda run: run.peak_workers_pss / (1 << 20),
            "{:,.0f}",
        ),
        ("peak RSS of the larger SDK worker process, MB", lambda run: run.worker_peaks[0] / (1 << 20), "{:,.0f}"),
        ("peak RSS of the smaller SDK worker process, MB", lambda run: run.worker_peaks[-1] / (1 << 20), "{:,.0f}"),
        ("peak RSS summed over the whole tree (+ launcher), MB", lambda run: run.peak_rss_sum / (1 << 20), "{:,.0f}"),
        ("peak PSS summed over the whole tree, MB", lambda run: run.peak_pss_sum / (1 << 20), "{:,.0f}"),
    ]
    title = f"medians of {args.rounds} rounds"
    print(f"\n{title:<54} {'per_process':>12} {'per_vm':>12} {'per_vm / per_process':>21}")
    for label, value, shown in rows:
        per_process, per_vm = median("per_process", value), median("per_vm", value)
        print(f"{label:<54} {shown.format(per_process):>12} {shown.format(per_vm):>12} {per_vm / per_process:>21.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
