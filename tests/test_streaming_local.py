"""docs/streaming.md's stream on your own machine, run as written, in three terminals: the Google Cloud CLI's
Pub/Sub emulator (`gcloud beta emulators pubsub start`); the topics made by scripts/local_pubsub.py, the sample
model as version 1 of a folder and the job (`template/main.py` on Beam's local runner); records sent, predictions
and a dead letter read, and a second version dropped in and seen serving. Ctrl-C, a SIGINT to a terminal's
processes, stops the job (which prints its summary) and the emulator.

Each terminal is a bash reading the docs' commands from its stdin, in a session of its own, in a scratch folder
that links the repository's .venv, samples, scripts and template (so `build/stream-model` is the test's), with a
gcloud configuration of its own (where the emulator's env.yaml goes, which `env-init` reads). One change to the
commands: the emulator listens on a free port, not 8085.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_LABELS
from tests.emulators import free_port, pubsub_emulator_missing
from tests.readme import block_holding
from tests.tools import require_tool

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

DOC = (ROOT / "docs/streaming.md").read_text()
(START_EMULATOR,) = block_holding("gcloud beta emulators pubsub start", DOC)
START_JOB = block_holding("local_pubsub.py create", DOC)
FIRST_RECORDS = block_holding("head -3 |", DOC)
NEW_VERSION = block_holding("build/stream-model/2", DOC)
MORE_RECORDS = block_holding("sed -n 4,6p", DOC)
DOCS_PORT = "localhost:8085"
LINKED = (".venv", "samples", "scripts", "template")


class Terminal:
    """A bash reading commands from stdin in a session of its own: what a user types, and Ctrl-C."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            ["bash"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.output: list[str] = []  # every line so far
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def type(self, commands: list[str]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{command}\n" for command in commands))
        self.process.stdin.flush()

    def wait_for(self, pattern: str, timeout_s: float) -> list[str]:
        """The lines printed until one matching `pattern` (that one included); fails after `timeout_s`."""
        lines, deadline = [], time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                tail = "\n".join(self.output[-40:])
                raise AssertionError(f"no {pattern!r} after {timeout_s:g} s:\n{tail}") from None
            if line is None:
                raise AssertionError(f"the terminal closed before {pattern!r}:\n" + "\n".join(self.output[-40:]))
            self.output.append(line)
            lines.append(line)
            if re.search(pattern, line):
                return lines

    def run(self, commands: list[str], timeout_s: float) -> list[str]:
        """Types `commands` and waits for them: the lines they printed. The last command must succeed."""
        marker = f"done-{uuid.uuid4().hex}"
        self.type([*commands, f'echo "{marker} $?"'])
        *printed, done = self.wait_for(f"^{marker} ", timeout_s)
        assert done == f"{marker} 0", "\n".join([*commands, "", *printed])
        return printed

    def processes(self) -> list[int]:
        """The processes of the terminal's session (gcloud puts itself in a process group of its own)."""
        listed = subprocess.run(["ps", "-o", "pid=", "-s", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in listed.stdout.split()]

    def signal(self, number: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to what runs in the terminal."""
        self.signal(signal.SIGINT)

    def close(self, timeout_s: float = 30) -> int | None:
        """Ends the terminal (its stdin closed): its exit status; None if something still ran after `timeout_s`
        (then killed)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not self.processes():  # bash reaped, nothing left behind
                return self.process.returncode
            time.sleep(0.2)
        self.signal(signal.SIGKILL)
        self.process.wait()
        return None


@dataclass
class LocalStream:
    folder: Path
    first_rows: list[dict]
    switch: list[str]  # terminal 2's lines up to the new version's
    more_rows: list[dict]  # the second pulls': predictions and dead letters
    job_output: list[str]  # terminal 2's lines after Ctrl-C
    emulator_status: int | None


def scratch_folder(folder: Path) -> Path:
    for name in LINKED:
        target = Path(sys.prefix) if name == ".venv" else ROOT / name  # the venv running the tests
        (folder / name).symlink_to(target, target_is_directory=True)
    return folder


def terminal_env(folder: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PUBSUB_EMULATOR_HOST", "PUBSUB_PROJECT_ID") and not key.lower().endswith("_proxy")
    }
    env.update(
        CLOUDSDK_CONFIG=str(folder / "gcloud-config"),
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
        CLOUDSDK_CORE_DISABLE_USAGE_REPORTING="1",
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


def json_rows(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture(scope="module")
def local_stream(tmp_path_factory) -> Iterator[LocalStream]:
    missing = pubsub_emulator_missing()
    require_tool(not missing, f"the Google Cloud CLI's Pub/Sub emulator cannot run here, no {' and no '.join(missing)}")
    folder = scratch_folder(tmp_path_factory.mktemp("local-stream"))
    env = terminal_env(folder)
    port = free_port()
    assert DOCS_PORT in START_EMULATOR
    emulator, job, user = Terminal(folder, env), Terminal(folder, env), Terminal(folder, env)
    try:
        emulator.type([START_EMULATOR.replace(DOCS_PORT, f"localhost:{port}")])
        emulator.wait_for(f"Server started, listening on {port}", 90)

        job.type(START_JOB)
        job.wait_for("as they come; Ctrl-C stops the job", 120)
        first = user.run(FIRST_RECORDS, 150)

        user.run(NEW_VERSION, 30)
        switch = job.wait_for("version 2 serves from now on", 60)
        more = user.run(MORE_RECORDS, 150)

        job.interrupt()
        job_output = job.wait_for(r"^\s+dead letters at", 60)
        emulator.interrupt()
        emulator_status = emulator.close()
        yield LocalStream(folder, json_rows(first), switch, json_rows(more), job_output, emulator_status)
    finally:
        for terminal in (user, job, emulator):  # after a failure too: nothing left running
            terminal.interrupt()
            terminal.close()


def labels(first: int, count: int) -> list[int]:
    """MNIST's test labels of records first..first+count-1 (idx1: an 8-byte header, then a byte each)."""
    with gzip.open(SAMPLE_LABELS, "rb") as handle:
        return list(handle.read()[8 + first : 8 + first + count])


def shown_rows() -> list[dict[str, int]]:
    """The key, prediction and model version of each row the docs show after the first records' block."""
    after = DOC[DOC.index(FIRST_RECORDS[-1]) :]
    block = re.search(r"^```\n+```\n(.*?)^```", after, re.M | re.S)  # the sh block's end, then the rows'
    assert block, "the docs show no rows after the first records' block"
    fields = ("key", "prediction", "model_version")
    return [
        {name: int(value) for name in fields for value in re.findall(rf'"{name}":(\d+)', line)}
        for line in block[1].splitlines()
    ]


def test_the_first_records_are_predicted_by_version_1_as_the_docs_show(local_stream):
    rows = sorted(local_stream.first_rows, key=lambda row: row["key"])
    assert [row["key"] for row in rows] == [0, 1, 2]
    assert [row["prediction"] for row in rows] == labels(0, 3)
    assert {row["model_version"] for row in rows} == {1}
    assert [{name: row[name] for name in ("key", "prediction", "model_version")} for row in rows] == shown_rows()
    assert all({"confidence", "pred0", "pred9"} <= set(row) for row in rows)


def test_a_second_version_dropped_in_serves_the_next_records(local_stream):
    assert any(
        "build/stream-model: version 2 serves from now on, after version 1" in line for line in local_stream.switch
    )
    rows = sorted((row for row in local_stream.more_rows if "prediction" in row), key=lambda row: row["key"])
    assert [row["key"] for row in rows] == [3, 4, 5]
    assert [row["prediction"] for row in rows] == labels(3, 3)
    assert {row["model_version"] for row in rows} == {2}
    assert sorted(path.name for path in (local_stream.folder / "build/stream-model").iterdir()) == ["1", "2"]


def test_a_record_the_model_cannot_take_is_a_dead_letter_and_the_stream_goes_on(local_stream):
    (dead_letter,) = [row for row in local_stream.more_rows if "reason" in row]
    assert dead_letter["payloadString"] == "9:1,2,3"
    assert dead_letter["reason"] == "wrong_value_count" and "784" in dead_letter["errorMessage"], dead_letter
    assert dead_letter["origin"] == "projects/local-project/subscriptions/mnist-images-sub"


def test_ctrl_c_stops_the_job_with_its_summary_and_the_emulator(local_stream):
    summary = "\n".join(local_stream.job_output)
    assert "Streaming prediction stopped after" in summary
    assert re.search(r"records read\s+7\n\s+predictions\s+6\n\s+dead letters\s+1\n", summary), summary
    assert local_stream.emulator_status is not None  # it ended on Ctrl-C, not killed after the timeout


def test_the_pubsub_helper_refuses_to_run_without_the_emulator(tmp_path):
    """Without PUBSUB_EMULATOR_HOST the client would go to Google's Pub/Sub: one line, and nothing is touched."""
    env = {key: value for key, value in terminal_env(tmp_path).items() if key != "PUBSUB_EMULATOR_HOST"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/local_pubsub.py"), "create", "mnist-images"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "PUBSUB_EMULATOR_HOST is not set: run $(gcloud beta emulators pubsub env-init) first\n"


def test_gcloud_pubsub_ignores_the_emulators_variable_and_reaches_it_only_by_an_endpoint_override(
    pubsub_emulator, tmp_path
):
    """Why the docs make topics with scripts/local_pubsub.py: with PUBSUB_EMULATOR_HOST set, `gcloud pubsub` still
    calls Google's endpoint; it lists the emulator's topics only with its api_endpoint_overrides/pubsub property
    (and a token, which the emulator does not check)."""
    require_tool(shutil.which("gcloud") is not None, "the Google Cloud CLI (gcloud) is not installed")
    topic = pubsub_emulator.topic("seen-by-gcloud")
    token = tmp_path / "token"
    token.write_text("any-token-the-emulator-does-not-check\n")
    env = terminal_env(tmp_path) | {
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE": str(token),
        "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
    }
    command = ["gcloud", "pubsub", "topics", "list", f"--project={pubsub_emulator.project}", "--format=value(name)"]
    logged = subprocess.Popen(
        [*command, "--log-http"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert logged.stdout is not None
        uri = next((line.split()[-1] for line in logged.stdout if line.startswith("uri: ")), "")
    finally:
        logged.kill()
        logged.wait(30)
    assert uri.startswith("https://pubsub.googleapis.com/"), uri  # Google's Pub/Sub, not the emulator
    override = env | {"CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{pubsub_emulator.host}/"}
    listed = subprocess.run(command, env=override, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert topic in listed.stdout.split()
    said = " ".join(DOC.split()) + " ".join((ROOT / "scripts/local_pubsub.py").read_text().split())
    assert said.count("ignores `PUBSUB_EMULATOR_HOST`") + said.count("ignores PUBSUB_EMULATOR_HOST") == 2
    assert "cannot reach the emulator" not in said


def test_the_docs_say_which_rows_hold_the_key_a_reader_deduplicates_on():
    """Vertex AI's shape without --key_field writes the instance, not a key (a reader keeps one row per instance)."""
    said = " ".join(DOC.split())
    assert "Every row holds the record's key" not in said
    assert "without `--key_field`, Vertex AI's shape writes the instance instead" in said
