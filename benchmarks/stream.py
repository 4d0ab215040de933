"""`make bench-stream`: a local streaming job fed the sample's lines at fixed rates, on this machine.

The template runs as a user runs it (`template/main.py` with a subscription for input and a topic for
output, Beam's local runner) against the Pub/Sub emulator of the Google Cloud CLI. Each phase
publishes at one rate for a fixed time; every prediction is matched to its message by key, and the
latency is the time from publish to the prediction's arrival on the output subscription. A last
phase floods the subscription at once, to find the rate the job sustains when it never waits; it runs
`--floods` times (3) and the median flood is the one compared, since a busy machine slows any one of them.
A baseline in the same run, the same read and write with no decoding and no model, shows how much of
it is the local runner and the emulator themselves: on the local runner as the template runs it
(`baseline`: prompt pulls and `compat.spare_repeated_work_in_local_streaming_runs`), and with the prompt
pulls alone (`stock`: the runner's work per bundle as Beam ships it, the baseline before 2026-12-03).

    python benchmarks/stream.py [--seconds 15] [--rates 50 200 1000] [--flood 5000] [--floods 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "template"))

from tests.conftest import SAMPLE_IMAGES, SAMPLE_MODEL  # noqa: E402
from tests.emulators import _stop, start_pubsub_emulator  # noqa: E402

PYTHON = sys.executable


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


class Receiver(threading.Thread):
    """Pulls predictions and notes when each key arrived."""

    def __init__(self, emulator, subscription: str):
        super().__init__(daemon=True)
        self._client = emulator.subscriber()
        self._subscription = subscription
        self.arrived: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            response = self._client.pull(subscription=self._subscription, max_messages=1000, timeout=5)
            now = time.time()
            for message in response.received_messages:
                row = json.loads(message.message.data)
                self.arrived.setdefault(int(row["key"]), now)
            if response.received_messages:
                ack_ids = [message.ack_id for message in response.received_messages]
                self._client.acknowledge(subscription=self._subscription, ack_ids=ack_ids)


def publish(emulator, topic: str, lines: list[bytes], first_key: int, rate: float | None, seconds: float) -> dict:
    """Publishes lines keyed from `first_key` at `rate` a second for `seconds` (all at once when rate is None)."""
    publisher = emulator.publisher()
    sent: dict[int, float] = {}
    futures = []
    started = time.time()
    count = len(lines) if rate is None else int(rate * seconds)
    for index in range(count):
        if rate is not None:
            delay = started + index / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        key = first_key + index
        _, _, values = lines[index % len(lines)].partition(b":")
        sent[key] = time.time()
        futures.append(publisher.publish(topic, str(key).encode() + b":" + values))
    for future in futures:
        future.result()
    return sent


def wait_for(receiver: Receiver, keys, timeout_s: float) -> float:
    """Seconds until every key arrived (or the timeout)."""
    started = time.time()
    while time.time() - started < timeout_s and not all(key in receiver.arrived for key in keys):
        time.sleep(0.2)
    return time.time() - started


BASELINE = r"""
import sys, apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
sys.path.insert(0, "template")
from pipeline.compat import pull_promptly_in_local_streaming_runs, spare_repeated_work_in_local_streaming_runs
pull_promptly_in_local_streaming_runs()
subscription, topic, runner = sys.argv[1:4]
if runner == "baseline":  # the local runner as the template runs it; "stock": its work per bundle as Beam ships it
    spare_repeated_work_in_local_streaming_runs()
import json
with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
    (p | beam.io.ReadFromPubSub(subscription=subscription)
       | beam.Map(lambda body: json.dumps({"key": int(body.split(b":", 1)[0])}).encode())
       | beam.io.WriteToPubSub(topic))
"""


def run_scenario(emulator, name: str, command: list[str], args, lines: list[bytes]) -> list[dict]:
    topic = emulator.topic(f"{name}-in")
    subscription = emulator.subscription(f"{name}-in-sub", topic)
    output = emulator.topic(f"{name}-out")
    emulator.topic(f"{name}-out_error_records")
    output_subscription = emulator.subscription(f"{name}-out-sub", output)
    env = dict(os.environ, PUBSUB_EMULATOR_HOST=emulator.host, TF_CPP_MIN_LOG_LEVEL="3")
    io = [subscription, output, name] if name != "template" else [f"--input={subscription}", f"--output={output}"]
    process = subprocess.Popen(
        [*command, *io], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    receiver = Receiver(emulator, output_subscription)
    receiver.start()
    results = []
    try:
        warm = publish(emulator, topic, lines, 10_000_000, 5, 2)  # the job's start-up is not a latency
        wait_for(receiver, warm, 120)
        next_key = 0
        phases = [(rate, args.seconds) for rate in args.rates] + [(None, 0)] * args.floods
        for rate, seconds in phases:
            batch = lines[: args.flood] if rate is None else lines
            started, cpu_started = time.time(), cpu_seconds(process.pid)
            sent = publish(emulator, topic, batch, next_key, rate, seconds)
            drained = wait_for(receiver, sent, 180)
            elapsed, cpu = time.time() - started, cpu_seconds(process.pid) - cpu_started
            latencies = [receiver.arrived[key] - sent[key] for key in sent if key in receiver.arrived]
            received = sum(key in receiver.arrived for key in sent)
            results.append(
                {
                    "scenario": name,
                    "offered": "flood" if rate is None else f"{rate:g}/s",
                    "messages": len(sent),
                    "received": received,
                    "sustained": received / elapsed,
                    "p50": percentile(latencies, 0.50),
                    "p99": percentile(latencies, 0.99),
                    "drain_s": drained,
                    "cpu_ms_per_message": cpu / max(received, 1) * 1000,
                }
            )
            print(f"  {name} {results[-1]['offered']}: {results[-1]}", file=sys.stderr, flush=True)
            next_key += len(sent)
    finally:
        receiver.stop.set()
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    return results


def median_flood(results: list[dict], scenario: str) -> dict | None:
    """The flood of a scenario with the median sustained rate."""
    floods = sorted(
        (row for row in results if row["scenario"] == scenario and row["offered"] == "flood"),
        key=lambda row: row["sustained"],
    )
    return floods[len(floods) // 2] if floods else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rates", type=float, nargs="*", default=[50, 200, 1000])
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument("--floods", type=int, default=3)
    args = parser.parse_args()
    with gzip.open(SAMPLE_IMAGES, "rb") as handle:
        lines = handle.read().splitlines()
    emulator = start_pubsub_emulator(Path(tempfile.mkdtemp(prefix="bench-stream-")))
    try:
        ours = [PYTHON, "template/main.py", f"--model={SAMPLE_MODEL}", "--format=key_values"]
        results = run_scenario(emulator, "template", ours, args, lines)
        results += run_scenario(emulator, "baseline", [PYTHON, "-c", BASELINE], args, lines)
        results += run_scenario(emulator, "stock", [PYTHON, "-c", BASELINE], args, lines)
    finally:
        _stop(emulator.proc)
    header = ("scenario", "offered", "messages", "received", "sustained/s", "p50 s", "p99 s", "CPU ms/msg")
    print("\n{:<10} {:>8} {:>9} {:>9} {:>12} {:>7} {:>7} {:>11}".format(*header))
    for row in results:
        print(
            f"{row['scenario']:<10} {row['offered']:>8} {row['messages']:>9,} {row['received']:>9,} "
            f"{row['sustained']:>12,.0f} {row['p50']:>7.2f} {row['p99']:>7.2f} {row['cpu_ms_per_message']:>11.2f}"
        )
    flood = {name: median_flood(results, name) for name in ("template", "baseline", "stock")}
    if all(flood.values()):
        ours, runner, stock = flood["template"], flood["baseline"], flood["stock"]
        print(
            f"\nFlood (the median of {args.floods}): the template sustains {ours['sustained']:,.0f} messages/s on the "
            f"local runner, whose own read and write with nothing between sustain {runner['sustained']:,.0f}/s "
            f"({ours['sustained'] / runner['sustained']:.2f}x), and {stock['sustained']:,.0f}/s with its work per "
            "bundle as Beam ships it "
            f"({ours['sustained'] / stock['sustained']:.2f}x). CPU per message: {ours['cpu_ms_per_message']:.2f} ms, "
            f"{runner['cpu_ms_per_message']:.2f} ms of it the local runner's read, bundles and write alone "
            f"({stock['cpu_ms_per_message']:.2f} ms stock; the model needs about 0.17 ms an image: "
            "make bench, row 1)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
