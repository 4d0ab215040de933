"""Streaming end to end on Beam's local runner: records published to the Pub/Sub emulator, every prediction
received once, dead letters for bad messages, BigQuery rows added by streaming inserts on the BigQuery
emulator (a row it refuses for good a dead letter), text files per window of publish time, and a new model
version taken mid-stream without a restart."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.job import progress
from tests.conftest import ROOT, SAMPLE_MODEL
from tests.fault_proxy import SCRIPTED, Rule, refuse_rows
from tests.model_factories import WIDTH, reference_scores, sharpened_saved_model, sharpened_scores
from tests.outputs import read_json_lines
from tests.streaming import Stream, eventually, lines_of, streaming_job

pytestmark = [pytest.mark.emulators, pytest.mark.slow, pytest.mark.timeout(180)]
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> Path:
    """A versioned model folder as TensorFlow Serving lays it out, version 1 only; later versions are
    made by the tests that switch."""
    folder = tmp_path_factory.mktemp("versions") / "model"
    folder.mkdir()
    sharpened_saved_model(folder / "1", 1.0)
    return folder


def test_every_message_is_predicted_once_and_a_bad_one_is_a_dead_letter(pubsub_emulator, sample_lines, sample_scores):
    stream = Stream(pubsub_emulator, "seed")
    stream.publish([*sample_lines[:300], b"not a record", b"7:0.5,0.5"])
    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={stream.output}",
        f"--model={SAMPLE_MODEL}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
    ) as config:
        assert config.sink == "pubsub" and config.dead_letter == stream.dead_letters
        predictions = stream.receive(stream.output, 300)
        dead_letters = stream.receive(stream.dead_letters, 2)
        assert stream.nothing_more(stream.output)
    keys = [row["key"] for row in predictions]
    assert sorted(keys) == list(range(300))
    scores = np.array([[row[f"pred{digit}"] for digit in range(10)] for row in predictions])
    np.testing.assert_allclose(scores, sample_scores[keys], atol=1e-5)
    assert sorted(row["reason"] for row in dead_letters) == ["missing_key", "wrong_value_count"]
    assert {row["origin"] for row in dead_letters} == {stream.subscription}
    assert all(row["position"] for row in dead_letters)  # the message id


def test_json_messages_are_keyed_by_their_field_or_their_message_id(pubsub_emulator, tiny_models):
    stream = Stream(pubsub_emulator, "json")
    images = np.random.default_rng(3).random((20, WIDTH), dtype=np.float32)
    bodies = [json.dumps({"id": f"r{index}", "image": image.tolist()}).encode() for index, image in enumerate(images)]
    bodies[5] = json.dumps({"image": images[5].tolist()}).encode()  # no id: keyed by its message id
    stream.publish(bodies)
    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={stream.output}",
        f"--model={tiny_models['saved_model_flat']}",
        "--key_field=id",
        "--max_batch_wait_seconds=0.2",
    ):
        predictions = stream.receive(stream.output, 20)
    by_key = {row["id"]: row for row in predictions}
    assert len(by_key) == 20 and {f"r{index}" for index in range(20) if index != 5} < set(by_key)
    (unkeyed,) = set(by_key) - {f"r{index}" for index in range(20)}
    assert unkeyed.isdigit()  # the emulator's message ids are numbers
    scores = [by_key["r3"][f"pred{index}"] for index in range(3)]
    np.testing.assert_allclose(scores, reference_scores(images[3:4])[0], atol=1e-5)


def test_a_new_model_version_serves_from_its_switch_on_and_one_that_does_not_fit_is_refused(
    pubsub_emulator, versions, tiny_models, caplog
):
    stream = Stream(pubsub_emulator, "versions")
    first = np.random.default_rng(1).random((40, WIDTH), dtype=np.float32)
    second = np.random.default_rng(2).random((40, WIDTH), dtype=np.float32)
    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={stream.output}",
        f"--model={versions}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
        "--model_poll_seconds=1",
    ) as config:
        assert config.model_version == 1 and config.rows.versioned
        stream.publish(lines_of(first))
        before = stream.receive(stream.output, 40)
        sharpened_saved_model(versions / "2", 3.0)
        shutil.copytree(tiny_models["saved_model_shaped"], versions / "3")  # another input shape: refused
        assert eventually(lambda: any("version 2 serves" in record.getMessage() for record in caplog.records))
        stream.publish(lines_of(second, first_key=1000))
        after = stream.receive(stream.output, 40)
        assert stream.nothing_more(stream.output)
    assert {row["model_version"] for row in before} == {1}
    assert {row["model_version"] for row in after} == {2}
    assert sorted(row["key"] for row in before + after) == [*range(40), *range(1000, 1040)]
    np.testing.assert_allclose(
        [[row[f"pred{index}"] for index in range(3)] for row in sorted(after, key=lambda row: row["key"])],
        sharpened_scores(second, 3.0),
        atol=1e-5,
    )
    refusals = [record.getMessage() for record in caplog.records if "version 3 is refused" in record.getMessage()]
    assert len(refusals) == 1 and "image float32 (2, 2, 3)" in refusals[0]  # said once, with why


def test_bigquery_rows_are_added_as_they_come(pubsub_emulator, cloud_emulators, sample_lines):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("streams", exists_ok=True)
    stream = Stream(pubsub_emulator, "to-bq")
    stream.publish([*sample_lines[:50], b"bad"])
    with streaming_job(
        f"--input={stream.subscription}",
        "--output=streams.predictions",
        f"--model={SAMPLE_MODEL}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
        *cloud_emulators.beam_options()[3:],  # the project; no runner flags: streaming picks its runner
    ) as config:
        assert (config.sink, config.dead_letter_kind) == ("bigquery", "bigquery")

        def rows(table: str) -> list[dict]:
            try:
                return [dict(row.items()) for row in client.query(f"SELECT * FROM streams.{table}").result()]
            except Exception:  # not created yet
                return []

        assert eventually(lambda: len(rows("predictions")) == 50, timeout_s=60)
        assert eventually(lambda: len(rows("predictions_error_records")) == 1, timeout_s=30)
    assert sorted(row["key"] for row in rows("predictions")) == list(range(50))
    assert rows("predictions_error_records")[0]["reason"] == "missing_key"


def windowed_keys(folder: Path, name: str) -> dict[tuple[float, float], list[int]]:
    """The keys in each window's files (`<name>-<start>-<end>-<pane>-00000-of-00001.jsonl`), by (start, end)."""
    found: dict[tuple[float, float], list[int]] = {}
    for path in folder.glob(f"{name}-*.jsonl"):
        match = re.fullmatch(rf"{name}-({ISO})-({ISO})-\d+-00000-of-00001\.jsonl", path.name)
        assert match, path.name
        start, end = (datetime.fromisoformat(bound).replace(tzinfo=UTC).timestamp() for bound in match.groups())
        found.setdefault((start, end), []).extend(row["key"] for row in read_json_lines(path))
    return found


def test_text_outputs_are_written_per_window_of_publish_time(pubsub_emulator, tmp_path, sample_lines):
    """A backlog published before the job started lands in the windows it was published in, which ended before
    the job read a message; what is published later lands in later windows; every record once."""
    stream = Stream(pubsub_emulator, "to-text")
    stream.publish(sample_lines[:10])
    time.sleep(2.5)  # longer than a window: the backlog's windows end before the job starts
    prefix = tmp_path / "out" / "predictions"
    started = time.time()
    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={prefix}",
        f"--model={SAMPLE_MODEL}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
        "--window_seconds=2",
    ) as config:
        assert config.sink == "text" and config.window_s == 2
        assert eventually(lambda: len(read_json_lines(f"{prefix}-*.jsonl")) == 10, timeout_s=60)
        stream.publish(sample_lines[10:20])
        assert eventually(lambda: len(read_json_lines(f"{prefix}-*.jsonl")) == 20, timeout_s=60)
    windows = windowed_keys(prefix.parent, "predictions")
    assert sorted(key for keys in windows.values() for key in keys) == list(range(20))  # each once
    assert all(end - start == 2 for start, end in windows)
    backlog = [window for window, keys in windows.items() if set(keys) <= set(range(10))]
    later = [window for window, keys in windows.items() if set(keys) <= set(range(10, 20))]
    assert len(backlog) + len(later) == len(windows), "a window holds records of both lots"
    assert max(end for _, end in backlog) <= started, "the backlog was written in the windows it was read in"
    assert min(start for start, _ in later) >= max(end for _, end in backlog)


def test_a_prediction_bigquery_refuses_for_good_is_a_dead_letter_and_the_stream_goes_on(
    pubsub_emulator, cloud_emulators, faulty_clouds, sample_lines
):
    from google.cloud import bigquery

    client = bigquery.Client()
    client.create_dataset("streams", exists_ok=True)
    stream = Stream(pubsub_emulator, "refused")
    stream.publish(sample_lines[:20])
    refuse = Rule(
        kinds=(SCRIPTED,),
        method="POST",
        path=r"/datasets/streams/tables/refused/insertAll$",
        when=lambda request: any(row["json"]["key"] == 7 for row in json.loads(request.body)["rows"]),
        script=refuse_rows(
            lambda row: ("invalid", "confidence", "out of range (injected)") if row["key"] == 7 else None
        ),
        max_in_a_row=100,
        name="insertAll refuses key 7",
    )

    def rows(table: str) -> list[dict]:
        try:
            return [dict(row.items()) for row in client.query(f"SELECT * FROM streams.{table}").result()]
        except Exception:  # not created yet
            return []

    progress.TALLIES.reset()
    with (
        faulty_clouds.through(bq=[refuse]),
        streaming_job(
            f"--input={stream.subscription}",
            "--output=streams.refused",
            f"--model={SAMPLE_MODEL}",
            "--format=key_values",
            "--max_batch_wait_seconds=0.2",
            *cloud_emulators.beam_options()[3:],
        ),
    ):
        assert eventually(lambda: len(rows("refused")) == 19, timeout_s=60)
        assert eventually(lambda: len(rows("refused_error_records")) == 1, timeout_s=30)
        stream.publish(sample_lines[20:30])
        assert eventually(lambda: len(rows("refused")) == 29, timeout_s=60)
    assert sorted(row["key"] for row in rows("refused")) == [key for key in range(30) if key != 7]
    (letter,) = rows("refused_error_records")
    assert letter["reason"] == "output_rejected" and letter["origin"].endswith("streams.refused")
    assert letter["errorMessage"] == "BigQuery refused the row for good: invalid (confidence): out of range (injected)"
    assert json.loads(letter["payloadString"])["key"] == 7
    counts = progress.TALLIES.counts()
    assert (counts.predictions, counts.dead_letters_by_reason) == (29, {"output_rejected": 1})
    assert counts.reconciles


def test_a_local_streaming_run_stops_on_ctrl_c_with_its_summary(pubsub_emulator, sample_lines):
    stream = Stream(pubsub_emulator, "ctrl-c")
    stream.publish([*sample_lines[:20], b"bad"])
    env = {"PUBSUB_EMULATOR_HOST": pubsub_emulator.host, "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        [sys.executable, "template/main.py", f"--input={stream.subscription}", f"--output={stream.output}",
         f"--model={SAMPLE_MODEL}", "--format=key_values"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stream.receive(stream.output, 20)
        stream.receive(stream.dead_letters, 1)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-3000:]
    assert "Ctrl-C stops the job" in err and "Traceback" not in err
    assert out.startswith("Streaming prediction stopped after")
    assert "records read                 21" in out and "predictions                  20" in out
    assert f"predictions at       Pub/Sub topic {stream.output}" in out
