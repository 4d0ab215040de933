"""`make bench`: this pipeline against its baselines, side by side, in one run on one machine.

Every scenario runs as its own process over the same data (the 10,000 sample images
replicated to 50,000 lines, gzipped) with the same network (the seed CNN of the sample model),
and is timed end to end, from process start to exit. Rounds are interleaved and the median
kept, because a shared machine is noisy: read the ratios, not the absolute numbers.

    python benchmarks/run.py [--rounds N] [--records N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.measure import run_measured  # noqa: E402

BENCH = ROOT / "build" / "bench"
PYTHON = sys.executable
SAMPLE_IMAGES = ROOT / "samples/mnist/images.txt.gz"
SAMPLE_MODEL = ROOT / "samples/model"
PENGUINS = ROOT / "samples/penguins"
SEED_STYLE_RECORDS = 3000  # one session.run per record is slow: it is timed on a prefix
STARTUP_RECORDS = 256  # one batch: what a run costs before its records do
STARTUP_DATA = BENCH / f"images{STARTUP_RECORDS}.txt.gz"
WORKER, WORKER_MEMORY_GB = "n1-standard-1", 3.75  # Dataflow's default batch worker
BAD_SHARE = 0.01  # records the range-checked model refuses, in the failure-isolation scenario


@dataclass
class Measurement:
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    records: int
    first_prediction_s: float | None = None
    model_load_s: float | None = None
    rate_override: float | None = None  # scenarios that time a part of their run report their own rate
    extra: dict = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.rate_override or self.records / self.wall_s

    @property
    def steady_images_per_s(self) -> float | None:
        """After the first prediction: the rate once start-up (imports, model load) is paid."""
        if self.rate_override or self.first_prediction_s is None:
            return self.rate_override
        return self.records / (self.wall_s - self.first_prediction_s)


def prepare(records: int) -> dict[str, Path]:
    """Input replicated to `records` lines, a legacy checkpoint and a .keras copy of the sample model."""
    BENCH.mkdir(parents=True, exist_ok=True)
    data = BENCH / f"images{records}.txt.gz"
    if not data.exists():
        with gzip.open(SAMPLE_IMAGES, "rb") as handle:
            lines = handle.read().splitlines()
        out = []
        for index in range(records):
            _, _, values = lines[index % len(lines)].partition(b":")
            out.append(str(index).encode() + b":" + values)
        data.write_bytes(gzip.compress(b"\n".join(out) + b"\n", 6))
    if not STARTUP_DATA.exists():
        with gzip.open(data, "rb") as handle:
            STARTUP_DATA.write_bytes(gzip.compress(b"\n".join(handle.read().splitlines()[:STARTUP_RECORDS]) + b"\n"))
    (BENCH / "out").mkdir(exist_ok=True)  # the baselines write there before the pipeline ever has
    for suffix in ("csv", "jsonl"):
        tabular = BENCH / f"penguins{records}.{suffix}.gz"
        if not tabular.exists():
            tabular.write_bytes(gzip.compress(_replicated_penguins(suffix, records), 6))
    parquet = _lake_files(data, records)
    legacy = BENCH / "legacy" / "export"
    keras_file = BENCH / "seed_cnn.keras"
    checked = BENCH / "range_checked_model"
    if not legacy.with_suffix(".meta").exists() or not keras_file.exists() or not checked.exists():
        subprocess.run(
            [PYTHON, str(Path(__file__).parent / "make_models.py"), str(legacy), str(keras_file), str(checked)],
            check=True,
        )
    dirty = BENCH / f"images{records}-1pct-out-of-range.txt.gz"
    if not dirty.exists():
        dirty.write_bytes(gzip.compress(_with_bad_records(data, BAD_SHARE), 6))
    return {
        "data": data,
        "dirty": dirty,
        "checked": checked,
        "legacy": legacy,
        "keras": keras_file,
        "csv": BENCH / f"penguins{records}.csv.gz",
        "jsonl": BENCH / f"penguins{records}.jsonl.gz",
        **parquet,
    }


def _lake_files(data: Path, records: int) -> dict[str, Path]:
    """The same records as Parquet (snappy, row groups of 10,000 as Spark writes them): the penguins rows, and the
    images as a (28, 28, 1) float column, nested fixed-size lists, as the sample model's input takes them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    penguins = BENCH / f"penguins{records}.parquet"
    if not penguins.exists():
        table = pa_csv.read_csv(pa.py_buffer(gzip.decompress((BENCH / f"penguins{records}.csv.gz").read_bytes())))
        pq.write_table(table, penguins, compression="snappy", row_group_size=10_000)
    images = BENCH / f"images{records}.parquet"
    if not images.exists():
        with gzip.open(data, "rb") as handle:
            lines = handle.read().splitlines()
        keys = np.array([int(line.partition(b":")[0]) for line in lines], dtype=np.int64)
        pixels = np.array([np.array(line.partition(b":")[2].split(b","), dtype=np.float32) for line in lines])
        column = pa.array(pixels.ravel())
        for size in (1, 28, 28):
            column = pa.FixedSizeListArray.from_arrays(column, size)
        pq.write_table(pa.table({"key": keys, "image": column}), images, compression="snappy", row_group_size=10_000)
    return {"penguins_parquet": penguins, "images_parquet": images}


def _with_bad_records(data: Path, share: float) -> bytes:
    """The input with `share` of its records, at random (seeded) positions, holding a pixel of 2.0:
    well-formed lines that the range-checked model refuses inside its graph."""
    with gzip.open(data, "rb") as handle:
        lines = handle.read().splitlines()
    rng = random.Random(20)
    for index in rng.sample(range(len(lines)), round(len(lines) * share)):
        key, _, values = lines[index].partition(b":")
        pixels = values.split(b",")
        pixels[rng.randrange(len(pixels))] = b"2.0"
        lines[index] = key + b":" + b",".join(pixels)
    return b"\n".join(lines) + b"\n"


def _replicated_penguins(suffix: str, records: int) -> bytes:
    """The penguins sample replicated to `records` rows with fresh keys, as CSV or JSON Lines."""
    lines = (PENGUINS / f"penguins.{suffix}").read_bytes().splitlines()
    header, rows = (lines[0], lines[1:]) if suffix == "csv" else (None, lines)
    out = [header] if header else []
    for key in range(records):
        row = rows[key % len(rows)]
        if suffix == "csv":
            out.append(str(key).encode() + b"," + row.split(b",", 1)[1])
        else:
            record = json.loads(row)
            record["key"] = key
            out.append(json.dumps(record).encode())
    return b"\n".join(out) + b"\n"


def run_process(command: list[str]) -> tuple[float, float, float, str]:
    """Runs a command; returns wall seconds, peak RSS (MB), CPU seconds (user + system) and stdout."""
    measured = run_measured(command, ROOT)
    if measured.status:
        raise SystemExit(f"{' '.join(command)} failed:\n{measured.stderr[-3000:]}")
    return measured.wall_s, measured.peak_rss_mb, measured.cpu_s, measured.stdout


def last_json(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def summary_value(stdout: str, label: str) -> float | None:
    match = re.search(rf"{label}\s+([\d,.]+)", stdout)
    return float(match.group(1).replace(",", "")) if match else None


def scenarios(paths: dict[str, Path], records: int) -> dict:
    out = BENCH / "out"
    ours = [PYTHON, "template/main.py", f"--input={paths['data']}", f"--model={SAMPLE_MODEL}"]

    def ours_measure(wall, peak, cpu, stdout):
        return Measurement(
            wall,
            peak,
            cpu,
            int(summary_value(stdout, "records read") or 0),
            summary_value(stdout, "first prediction"),
            summary_value(stdout, "model loaded in"),
            extra={"dead_letters": int(summary_value(stdout, "dead letters") or 0)},
        )

    def script_measure(wall, peak, cpu, stdout):
        data = last_json(stdout)
        return Measurement(
            wall,
            peak,
            cpu,
            data["records"] or records,
            data.get("first_prediction_s"),
            data.get("model_load_s"),
            rate_override=data.get("images_per_s") or data.get("steady_images_per_s"),
            extra=data,
        )

    return {
        "ceiling": (
            "1. ceiling: parsed array, model called directly",
            [PYTHON, "benchmarks/ceiling.py", str(paths["data"]), str(SAMPLE_MODEL)],
            script_measure,
        ),
        "handwritten": (
            "2. hand-written one-process script",
            [PYTHON, "benchmarks/handwritten.py", str(paths["data"]), str(SAMPLE_MODEL), str(out / "hand.jsonl")],
            script_measure,
        ),
        "seed": (
            f"3. seed style, one session.run per record ({SEED_STYLE_RECORDS:,})",
            [
                PYTHON,
                "benchmarks/seed_style.py",
                str(paths["data"]),
                str(paths["legacy"]),
                str(out / "seed.jsonl"),
                str(SEED_STYLE_RECORDS),
            ],
            script_measure,
        ),
        "stock": (
            "4. Beam stock RunInference defaults",
            [PYTHON, "benchmarks/stock_runinference.py", str(paths["data"]), str(paths["keras"]), str(out / "stock")],
            lambda wall, peak, cpu, stdout: Measurement(
                wall, peak, cpu, records, last_json(stdout)["first_prediction_s"]
            ),
        ),
        "ours": (
            "5. this pipeline, DirectRunner",
            [*ours, f"--output={out / 'ours'}"],
            ours_measure,
        ),
        "ours-stats-off": (
            "5f. this pipeline, statistics off",
            [*ours, f"--output={out / 'ours-stats-off'}", "--statistics=off"],
            ours_measure,
        ),
        "isolation-overhead": (
            "5c. model calls through failure isolation, clean",
            [PYTHON, "benchmarks/isolation_overhead.py", str(paths["data"]), str(SAMPLE_MODEL)],
            script_measure,
        ),
        "checked-clean": (
            "5d. range-checked model, clean records",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['data']}",
                f"--model={paths['checked']}",
                f"--output={out / 'checked'}",
            ],
            ours_measure,
        ),
        "checked-1pct": (
            f"5e. range-checked model, {BAD_SHARE:.0%} records it refuses",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['dirty']}",
                f"--model={paths['checked']}",
                f"--output={out / 'dirty'}",
            ],
            ours_measure,
        ),
        "ours-startup": (
            f"5b. this pipeline on {STARTUP_RECORDS} records (start-up)",
            [PYTHON, "template/main.py", f"--input={STARTUP_DATA}", f"--model={SAMPLE_MODEL}", f"--output={out / 's'}"],
            ours_measure,
        ),
        "csv-pandas": (
            "6. CSV (penguins): hand-written pandas script",
            [
                PYTHON,
                "benchmarks/handwritten_tabular.py",
                str(paths["csv"]),
                str(PENGUINS / "model"),
                str(out / "t.jsonl"),
            ],
            script_measure,
        ),
        "csv-ours": (
            "7. CSV (penguins): this pipeline",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['csv']}",
                f"--model={PENGUINS / 'model'}",
                f"--output={out / 'csv'}",
            ],
            ours_measure,
        ),
        "csv-stats-off": (
            "7b. CSV (penguins): this pipeline, statistics off",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['csv']}",
                f"--model={PENGUINS / 'model'}",
                f"--output={out / 'csv-stats-off'}",
                "--statistics=off",
            ],
            ours_measure,
        ),
        "jsonl-pandas": (
            "8. JSON Lines (penguins): hand-written pandas script",
            [
                PYTHON,
                "benchmarks/handwritten_tabular.py",
                str(paths["jsonl"]),
                str(PENGUINS / "model"),
                str(out / "j.jsonl"),
            ],
            script_measure,
        ),
        "jsonl-ours": (
            "9. JSON Lines (penguins): this pipeline",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['jsonl']}",
                f"--model={PENGUINS / 'model'}",
                f"--output={out / 'jsonl'}",
            ],
            ours_measure,
        ),
        "jsonl-udf-ours": (
            "9b. JSON Lines (penguins): ours, identity UDF",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['jsonl']}",
                f"--model={PENGUINS / 'model'}",
                f"--output={out / 'jsonl-udf'}",
                f"--python_udf_gcs_path={Path(__file__).parent / 'identity_udf.py'}",
                "--python_udf_function_name=identity",
            ],
            ours_measure,
        ),
        "parquet-script": (
            "10. Parquet (penguins): hand-written pyarrow script",
            [
                PYTHON,
                "benchmarks/handwritten_parquet.py",
                str(paths["penguins_parquet"]),
                str(PENGUINS / "model"),
                str(out / "p.jsonl"),
            ],
            script_measure,
        ),
        "parquet-ours": (
            "11. Parquet (penguins): this pipeline",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['penguins_parquet']}",
                f"--model={PENGUINS / 'model'}",
                f"--output={out / 'parquet'}",
            ],
            ours_measure,
        ),
        "images-parquet-script": (
            "12. Parquet (images): hand-written pyarrow script",
            [
                PYTHON,
                "benchmarks/handwritten_parquet.py",
                str(paths["images_parquet"]),
                str(SAMPLE_MODEL),
                str(out / "ip.jsonl"),
            ],
            script_measure,
        ),
        "images-parquet-ours": (
            "13. Parquet (images): this pipeline",
            [
                PYTHON,
                "template/main.py",
                f"--input={paths['images_parquet']}",
                f"--model={SAMPLE_MODEL}",
                f"--output={out / 'images-parquet'}",
            ],
            ours_measure,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    args = parser.parse_args()
    paths = prepare(args.records)
    table = scenarios(paths, args.records)
    names = args.only or list(table)
    results: dict[str, list[Measurement]] = {name: [] for name in names}
    for round_number in range(args.rounds):
        for name in names:
            label, command, measure = table[name]
            print(f"round {round_number + 1}/{args.rounds}: {label} ...", file=sys.stderr, flush=True)
            results[name].append(measure(*run_process(command)))
    print_table(table, results)
    return 0


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def print_table(table, results) -> None:
    rates = {name: median([m.images_per_s for m in runs]) for name, runs in results.items()}
    steady = {name: median([m.steady_images_per_s for m in runs]) for name, runs in results.items()}
    ceiling = rates.get("ceiling")
    columns = (
        "images/s",
        "x ceiling",
        "x script",
        "x stock",
        "x seed",
        "x pandas",
        "steady/s",
        "1st pred s",
        "load s",
        "RSS MB",
        "CPU s/1k",
    )
    print(f"{'scenario':<50} " + " ".join(f"{column:>10}" for column in columns))
    print("-" * (50 + 11 * len(columns)))

    def ratio(value, name):
        base = rates.get(name)
        return value / base if value and base else float("nan")

    cpu_per_image = {name: median([m.cpu_s / m.records for m in runs]) for name, runs in results.items()}
    model_cpu_us = median([m.extra.get("model_cpu_us_per_image") for m in results.get("ceiling", [])]) or 0.0

    for name, runs in results.items():
        rate = rates[name]
        first = median([m.first_prediction_s for m in runs])
        load = median([m.model_load_s for m in runs])
        cells = (
            f"{rate:,.0f}",
            f"{ratio(rate, 'ceiling'):.2f}" if ceiling else "nan",
            f"{ratio(rate, 'handwritten'):.2f}",
            f"{ratio(rate, 'stock'):.2f}",
            f"{ratio(rate, 'seed'):.2f}",
            f"{ratio(rate, name.replace('-ours', '-pandas')):.2f}" if name.endswith("-ours") else "",
            f"{steady[name]:,.0f}" if steady[name] else "",
            f"{first:.1f}" if first is not None else "",
            f"{load:.2f}" if load is not None else "",
            f"{max(m.peak_rss_mb for m in runs):,.0f}",
            f"{cpu_per_image[name] * 1000:.2f}" if name != "ceiling" else f"{model_cpu_us / 1000:.2f}*",
        )
        print(f"{table[name][0]:<50} " + " ".join(f"{cell:>10}" for cell in cells))
    print(
        "\nimages/s: whole process, start to exit, except 1 (model calls only) and 3 (steady rate over its "
        "prefix).\nsteady/s: records / (exit - first prediction). Medians of the rounds; RSS: the largest.\n"
        "CPU s/1k: user + system CPU seconds of the whole process per 1,000 records (* row 1: the model's "
        "calls alone, at batch 256)."
    )
    if model_cpu_us and "ours" in cpu_per_image:
        ours_us = cpu_per_image["ours"] * 1e6
        line = (
            f"\nCPU per image: the model alone {model_cpu_us:.0f} µs; this pipeline {ours_us:.0f} µs for the whole "
            f"process, so {ours_us - model_cpu_us:.0f} µs outside the model with start-up"
        )
        if "ours-startup" in results:
            startup_cpu = median([m.cpu_s for m in results["ours-startup"]])
            records = median([m.records for m in results["ours"]])
            steady_us = (median([m.cpu_s for m in results["ours"]]) - startup_cpu) / records * 1e6
            line += f"; start-up is {startup_cpu:.1f} CPU s, so once running {steady_us:.0f} µs per image"
            line += f", {steady_us - model_cpu_us:.0f} µs of them outside the model"
        print(line + ".")
    print_isolation(results, rates, steady)
    print_lake(results, steady)
    print_statistics_cost(results, rates, steady)
    print_cost(cpu_per_image)


def print_isolation(results, rates, steady) -> None:
    """Failure isolation: its cost on clean batches, and the rate with refused records against a clean run."""
    lines = []
    if "isolation-overhead" in results:
        ratio = median([m.extra["isolated_over_direct"] for m in results["isolation-overhead"]])
        lines.append(f"clean batches through isolation run at {ratio:.3f}x the model called directly (goal >= 0.97)")
    if "checked-clean" in results and "checked-1pct" in results:
        dead = median([m.extra["dead_letters"] for m in results["checked-1pct"]])
        whole = rates["checked-1pct"] / rates["checked-clean"]
        line = f"with {BAD_SHARE:.0%} refused records ({dead:,.0f} dead letters): {whole:.2f}x the clean run's rate"
        if steady["checked-1pct"] and steady["checked-clean"]:
            line += f", {steady['checked-1pct'] / steady['checked-clean']:.2f}x steady"
        lines.append(line + " (goal >= 0.5x)")
    if lines:
        print("\nFailure isolation: " + "; ".join(lines) + ".")


def print_lake(results, steady) -> None:
    """Parquet against the hand-written pyarrow script once running (goal >= 0.9x); a UDF's cost (goal <= 10 %)."""
    lines = []
    for ours, script, what in (
        ("parquet-ours", "parquet-script", "penguins"),
        ("images-parquet-ours", "images-parquet-script", "images"),
    ):
        if steady.get(ours) and steady.get(script):
            lines.append(
                f"Parquet ({what}) once running: {steady[ours]:,.0f} against the pyarrow script's "
                f"{steady[script]:,.0f} records/s, {steady[ours] / steady[script]:.2f}x (goal >= 0.9x)"
            )
    if steady.get("jsonl-udf-ours") and steady.get("jsonl-ours"):
        cost = 1 - steady["jsonl-udf-ours"] / steady["jsonl-ours"]
        lines.append(
            f"a UDF returning its input: {steady['jsonl-udf-ours']:,.0f} against {steady['jsonl-ours']:,.0f} "
            f"records/s once running without it, a cost of {cost:.1%} (goal <= 10 %)"
        )
    if lines:
        print("\nData-lake inputs and UDFs: " + "; ".join(lines) + ".")


def print_statistics_cost(results, rates, steady) -> None:
    """The run's statistics (on by default only if they cost at most 5 % of the steady rate): on against off."""
    lines = []
    for on, off, what in (("ours", "ours-stats-off", "images"), ("csv-ours", "csv-stats-off", "CSV rows")):
        if on in results and off in results and steady[on] and steady[off]:
            cost = 1 - steady[on] / steady[off]
            lines.append(
                f"{what}: {steady[on]:,.0f}/s steady with them, {steady[off]:,.0f}/s without, a cost of {cost:.1%} "
                f"({rates[on] / rates[off]:.3f}x end to end)"
            )
    if lines:
        print("\nStatistics (goal: at most 5 % of the steady rate): " + "; ".join(lines) + ".")


def print_cost(cpu_per_image: dict[str, float]) -> None:
    """Dataflow cost per million images, were the CPU seconds measured here billed on Dataflow workers."""
    from apache_beam.testing.load_tests import dataflow_cost_consts as price

    hourly = price.VCPU_PER_HR_BATCH + WORKER_MEMORY_GB * price.MEM_PER_GB_HR_BATCH
    costs = ", ".join(
        f"{name} ${seconds * 1e6 / 3600 * hourly:.4f}"
        for name, seconds in cpu_per_image.items()
        if name not in ("ceiling", "ours-startup")
    )
    print(
        f"\nDataflow cost per million images on {WORKER} workers (1 vCPU, {WORKER_MEMORY_GB} GB; batch prices of "
        f"us-central1 as Apache Beam {beam_version()} records them from cloud.google.com/dataflow/pricing: "
        f"${price.VCPU_PER_HR_BATCH}/vCPU-hour, ${price.MEM_PER_GB_HR_BATCH}/GB-hour), if each busy CPU second "
        f"here is a vCPU second there: {costs}."
    )


def beam_version() -> str:
    import apache_beam

    return apache_beam.__version__


if __name__ == "__main__":
    sys.exit(main())
