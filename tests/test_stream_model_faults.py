"""A stream never stalls on its model, end to end on Beam's local runner and the Pub/Sub emulator: a model
that fails every record makes dead letters and the job goes on; a new version that fails records its
predecessor predicted is rolled back, and every record is predicted by the predecessor."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.model_factories import WIDTH, failing_saved_model, sharpened_saved_model, sharpened_scores
from tests.streaming import Stream, eventually, lines_of, streaming_job

pytestmark = [pytest.mark.emulators, pytest.mark.slow, pytest.mark.timeout(180)]


def test_a_stream_whose_model_fails_every_record_dead_letters_them_and_keeps_running(pubsub_emulator, tmp_path):
    stream = Stream(pubsub_emulator, "failing-model")
    model = failing_saved_model(tmp_path / "model", limit=-1.0)  # refuses every value
    images = np.random.default_rng(7).random((150, WIDTH), dtype=np.float32)
    with streaming_job(
        f"--input={stream.subscription}",
        f"--output={stream.output}",
        f"--model={model}",
        "--format=key_values",
        "--max_batch_wait_seconds=0.2",
    ):
        stream.publish(lines_of(images))
        letters = stream.receive(stream.dead_letters, 150)
        stream.publish(lines_of(images[:10], first_key=1000))  # still running: these come back too
        later = stream.receive(stream.dead_letters, 10)
        assert stream.nothing_more(stream.output)
    assert {row["reason"] for row in letters + later} == {"inference_failed"}
    keys = sorted(int(row["payloadString"].split(":")[0]) for row in letters + later)
    assert keys == [*range(150), *range(1000, 1010)]


def test_a_new_version_that_fails_records_its_predecessor_predicted_is_rolled_back(pubsub_emulator, tmp_path, caplog):
    stream = Stream(pubsub_emulator, "rollback")
    folder = tmp_path / "model"
    sharpened_saved_model(folder / "1", 1.0)
    images = np.random.default_rng(8).random((40, WIDTH), dtype=np.float32)
    with (
        streaming_job(
            f"--input={stream.subscription}",
            f"--output={stream.output}",
            f"--model={folder}",
            "--format=key_values",
            "--max_batch_wait_seconds=0.2",
            "--model_poll_seconds=1",
        ),
        caplog.at_level(logging.WARNING, logger="pipeline.model.versions"),
    ):
        stream.publish(lines_of(images[:5], first_key=100))  # the workers load version 1 for these
        assert len(stream.receive(stream.output, 5)) == 5
        failing_saved_model(folder / "2", limit=0.5)  # same signature, refuses most records
        assert eventually(lambda: any("version 2 serves" in record.getMessage() for record in caplog.records))
        stream.publish(lines_of(images))
        rows = stream.receive(stream.output, 40)
        assert stream.nothing_more(stream.dead_letters)
    assert {row["model_version"] for row in rows} == {1}
    ordered = sorted(rows, key=lambda row: row["key"])
    assert [row["key"] for row in ordered] == list(range(40))
    np.testing.assert_allclose(
        [[row[f"pred{index}"] for index in range(3)] for row in ordered], sharpened_scores(images, 1.0), atol=1e-5
    )
    said = [record.getMessage() for record in caplog.records if "is rolled back" in record.getMessage()]
    assert len(said) == 1 and "version 2 is rolled back: it failed on a record that version 1 predicted" in said[0]
