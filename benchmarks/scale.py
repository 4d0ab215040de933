"""`make bench-scale`: what 1 M, 100 M and 1 B records of each sample format would take on Dataflow.

Each sample format is run here by the template as a user runs it, on one core (`taskset`), and its
steady rate (records after the first prediction, per second) is taken as the rate of one Dataflow
vCPU. From that rate, and Dataflow's batch prices as Apache Beam records them
(`apache_beam.testing.load_tests.dataflow_cost_consts`, from cloud.google.com/dataflow/pricing), it
prints a table of workers, wall time and cost per input size. The assumptions are printed with it and
written out in docs/performance.md ("At scale").

    python benchmarks/scale.py [--records N] [--worker n1-standard-2]
"""

from __future__ import annotations

import argparse
import gzip
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apache_beam.testing.load_tests import dataflow_cost_consts as prices  # noqa: E402

from benchmarks.run import BENCH, PENGUINS, PYTHON, SAMPLE_MODEL, prepare, summary_value  # noqa: E402
from scripts.measure import run_measured  # noqa: E402

SIZES = (1_000_000, 100_000_000, 1_000_000_000)
WORKER_TYPES = {"n1-standard-1": (1, 3.75), "n1-standard-2": (2, 7.5), "n1-standard-4": (4, 15.0)}
DISK_GB = 25  # a batch worker's boot disk where Dataflow Shuffle runs the shuffle (the default in its regions)
START_S, END_S = 180, 60  # a job's workers starting, and its last step and teardown: measured on Dataflow, typical
TARGET_S = 3600  # workers are chosen for about an hour of scoring, within...
MAX_WORKERS = 1000  # ...Dataflow's default autoscaling ceiling for batch jobs
PNG_COPIES = 10  # the 200 sample PNGs, copied this many times: whole files are read one by one


@dataclass
class Format:
    name: str
    input: Path
    model: Path
    records: int


def formats(records: int) -> list[Format]:
    """Each sample format over the same records as `make bench` (the images, the penguins), and the PNG files."""
    paths = prepare(records)
    images = BENCH / f"images{records}.txt"
    if not images.exists():
        images.write_bytes(gzip.decompress(paths["data"].read_bytes()))
    csv = BENCH / f"penguins{records}.csv"
    if not csv.exists():
        csv.write_bytes(gzip.decompress(paths["csv"].read_bytes()))
    png = BENCH / f"png{200 * PNG_COPIES}"
    if not png.exists():
        png.mkdir()
        for copy in range(PNG_COPIES):
            for file in sorted((ROOT / "samples/png/digits").glob("*.png")):
                shutil.copyfile(file, png / f"{copy}-{file.name}")
    penguins_model = PENGUINS / "model"
    return [
        Format("images, key:values lines, gzip (the 2017 sample's)", paths["data"], SAMPLE_MODEL, records),
        Format("images, key:values lines, uncompressed", images, SAMPLE_MODEL, records),
        Format("images, Parquet (28,28,1) column", paths["images_parquet"], SAMPLE_MODEL, records),
        Format("images, PNG files", png, ROOT / "samples/png/model", 200 * PNG_COPIES),
        Format("penguins, CSV, uncompressed", csv, penguins_model, records),
        Format("penguins, JSON Lines, gzip", paths["jsonl"], penguins_model, records),
        Format("penguins, Parquet", paths["penguins_parquet"], penguins_model, records),
    ]


def rate_per_core(fmt: Format) -> tuple[float, float]:
    """Records per second once running, on one core, and CPU seconds per 1,000 records over the whole run."""
    output = BENCH / "out" / "scale"
    source = f"--input={fmt.input}/" if fmt.input.is_dir() else f"--input={fmt.input}"
    command = ["taskset", "-c", "0", PYTHON, "template/main.py", source, f"--model={fmt.model}", f"--output={output}"]
    measured = run_measured(command, ROOT)
    if measured.status:
        raise SystemExit(f"{' '.join(command)} failed:\n{measured.stderr[-3000:]}")
    read = summary_value(measured.stdout, "records read") or fmt.records
    first = summary_value(measured.stdout, "first prediction") or 0.0
    return read / (measured.wall_s - first), measured.cpu_s / read * 1000


def plan(records: int, rate: float, vcpus: int, memory_gb: float) -> tuple[int, float, float]:
    """Workers, wall seconds and dollars for `records` at `rate` per vCPU."""
    per_worker = rate * vcpus
    workers = min(MAX_WORKERS, max(1, math.ceil(records / (per_worker * TARGET_S))))
    scoring_s = records / (per_worker * workers)
    wall_s = START_S + scoring_s + END_S
    hourly = vcpus * prices.VCPU_PER_HR_BATCH + memory_gb * prices.MEM_PER_GB_HR_BATCH + DISK_GB * prices.PD_PER_GB_HR
    cost = workers * wall_s / 3600 * hourly  # billed from the workers' start to the job's end

    return workers, wall_s, cost


def duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--worker", default="n1-standard-2", choices=sorted(WORKER_TYPES))
    args = parser.parse_args()
    vcpus, memory_gb = WORKER_TYPES[args.worker]
    rows = []
    for fmt in formats(args.records):
        print(f"measuring {fmt.name} on one core ...", file=sys.stderr, flush=True)
        rate, cpu = rate_per_core(fmt)
        rows.append((fmt, rate, cpu))
    print(f"\nRates on one core of this machine; Dataflow {args.worker} workers ({vcpus} vCPU, {memory_gb} GB),")
    print(
        f"${prices.VCPU_PER_HR_BATCH}/vCPU-h, ${prices.MEM_PER_GB_HR_BATCH}/GB-h, ${prices.PD_PER_GB_HR}/disk GB-h "
        f"({DISK_GB} GB), {START_S // 60} min to start and {END_S // 60} min to finish, workers for about "
        f"{TARGET_S // 3600} h of scoring (at most {MAX_WORKERS:,}).\n"
    )
    header = "| format | records/s per vCPU | CPU s per 1,000 |"
    header += "".join(f" {size:,.0f}: workers | wall | cost |" for size in SIZES)
    print(header)
    print("|---|---:|---:|" + "---:|---:|---:|" * len(SIZES))
    for fmt, rate, cpu in rows:
        cells = [f"| {fmt.name} | {rate:,.0f} | {cpu:.2f} |"]
        for size in SIZES:
            workers, wall_s, cost = plan(size, rate, vcpus, memory_gb)
            cells.append(f" {workers:,} | {duration(wall_s)} | ${cost:,.2f} |")
        print("".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
