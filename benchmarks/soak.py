"""`make soak`: a million records through the pipeline with bounded memory.

Generates (once, not committed) build/soak/images1000000.txt.gz from the sample images with
fresh keys, runs template/main.py over it on DirectRunner, samples the process's resident
memory every second, and prints how it evolved: memory must stay flat while records stream
through, since no step may hold the whole dataset.

    python benchmarks/soak.py [--records N]
"""

from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "build" / "soak"
SAMPLE_IMAGES = ROOT / "samples/mnist/images.txt.gz"
SAMPLE_MODEL = ROOT / "samples/model"


def generate(records: int) -> Path:
    path = SOAK / f"images{records}.txt.gz"
    if path.exists():
        return path
    SOAK.mkdir(parents=True, exist_ok=True)
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        values = [line.partition(b":")[2] for line in handle.read().splitlines()]
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wb", compresslevel=1) as out:
        for start in range(0, records, len(values)):
            chunk = [
                b"%d:%s" % (key, values[key % len(values)]) for key in range(start, min(records, start + len(values)))
            ]
            out.write(b"\n".join(chunk) + b"\n")
    partial.rename(path)
    return path


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        pids += [int(child) for child in children]
    return total / 1024 if total else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.time()
    data = generate(args.records)
    print(f"input: {data} ({data.stat().st_size / 1e6:,.0f} MB gzipped), ready after {time.time() - started:.0f} s")
    command = [
        sys.executable,
        "template/main.py",
        f"--input={data}",
        f"--output={SOAK / 'out' / 'predictions'}",
        f"--model={SAMPLE_MODEL}",
    ]
    began = time.time()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    samples: list[tuple[float, float]] = []
    while process.poll() is None:
        if (rss := rss_mb(process.pid)) is not None:
            samples.append((time.time() - began, rss))
        time.sleep(1.0)
    output = process.stdout.read()
    if process.returncode:
        print(output)
        raise SystemExit(f"the pipeline failed with exit status {process.returncode}")
    print(output)
    elapsed = time.time() - began
    peak = max(rss for _, rss in samples)
    print(f"records: {args.records:,} in {elapsed:.0f} s ({args.records / elapsed:,.0f} records/s end to end)")
    print(f"peak RSS: {peak:,.0f} MB")
    print("RSS over the run (MB):")
    for fraction in (0.1, 0.25, 0.5, 0.75, 0.9):
        at, rss = samples[min(len(samples) - 1, int(fraction * len(samples)))]
        print(f"  {fraction:>4.0%} ({at:>5.0f} s): {rss:>7,.0f}")
    middle = [rss for at, rss in samples if 0.25 * elapsed <= at <= 0.9 * elapsed]
    growth = (middle[-1] - middle[0]) if middle else 0.0
    print(f"growth from 25% to 90% of the run: {growth:+,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
