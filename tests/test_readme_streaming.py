"""The streaming commands of docs/streaming.md, run as written: `gcloud pubsub` against the Pub/Sub emulator, the
streaming launch, its `--update` and the drain through the real gcloud against the fake Dataflow API,
each launch then run the way the Flex Template launcher runs it (tests/launcher.py)."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLE_MODEL
from tests.emulators import PROJECT
from tests.google_fakes import check_launch_parameters
from tests.launch_fixtures import LAUNCH_BUCKET, STREAMING_TEMPLATE_METADATA
from tests.launcher import REGION, invocation_of
from tests.readme import commands_starting_with
from tests.test_readme_launches import LAUNCH, STREAMING_SPEC
from tests.tools import GCLOUD, requires_tool

pytestmark = [
    pytest.mark.emulators,
    pytest.mark.slow,
    requires_tool(GCLOUD is not None, "gcloud is not installed: the README's commands cannot be run"),
]

PUBSUB_SETUP = commands_starting_with("gcloud pubsub topics create") + commands_starting_with(
    "gcloud pubsub subscriptions create"
)
FIRST_LAUNCH, UPDATE = commands_starting_with(LAUNCH, containing="/streaming-prediction.json")
(PUBLISH,) = commands_starting_with("gcloud pubsub topics publish")
(PULL,) = commands_starting_with("gcloud pubsub subscriptions pull")
(DRAIN,) = commands_starting_with("gcloud dataflow jobs drain")
FIRST_VERSION, NEXT_VERSION = commands_starting_with("gcloud storage cp -r", containing="/mnist/versions/")
RETRAINED = "path/to/retrained/model"  # the docs' placeholder for the user's new model: the sample model here
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/mnist-images-sub"


@pytest.fixture(scope="module")
def readme_streams(streaming_shell, pubsub_emulator, gcs_emulator, launch_bucket) -> None:
    """The docs' topics and subscriptions, and their versioned model folder (gcloud storage on the emulator)."""
    for command in PUBSUB_SETUP:
        result = streaming_shell.run(command)
        assert result.returncode == 0 or "already exists" in result.stderr.lower(), command + result.stderr
    result = streaming_shell.run(FIRST_VERSION)
    assert result.returncode == 0, FIRST_VERSION + result.stderr
    assert gcs_emulator.client().bucket(launch_bucket).blob("mnist/versions/1/saved_model.pb").exists()


def launch_as_the_launcher_does(captured, launcher, pubsub_emulator):
    environment, parameters = invocation_of(captured.parameter, captured.project, captured.location, LAUNCH_BUCKET)
    launch = launcher.launch(parameters, environment, env_overrides={"PUBSUB_EMULATOR_HOST": pubsub_emulator.host})
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == []
    return launcher.read_json(environment.template_location)


def test_the_readmes_pubsub_lines_make_the_subscription_and_topics_a_stream_needs(readme_streams, pubsub_emulator):
    assert PUBSUB_SETUP, "the README creates its topics and subscriptions"
    pubsub_emulator.subscriber().get_subscription(subscription=SUBSCRIPTION)
    for name in ("mnist-images", "mnist-predictions", "mnist-predictions_error_records"):
        pubsub_emulator.publisher().get_topic(topic=f"projects/{PROJECT}/topics/{name}")


def test_the_readmes_publish_sends_a_sample_line_and_its_pull_reads_predictions(
    streaming_shell, readme_streams, pubsub_emulator, sample_lines
):
    result = streaming_shell.run(PUBLISH)
    assert result.returncode == 0, result.stderr
    subscriber = pubsub_emulator.subscriber()
    response = subscriber.pull(subscription=SUBSCRIPTION, max_messages=10, timeout=10)
    assert [message.message.data for message in response.received_messages] == [sample_lines[0]]
    subscriber.acknowledge(subscription=SUBSCRIPTION, ack_ids=[m.ack_id for m in response.received_messages])
    # What the job would publish for it (tests/test_streaming.py runs the job itself), read as the README does.
    row = b'{"key":0,"prediction":7,"confidence":0.99,"model_version":1}'
    pubsub_emulator.publisher().publish(f"projects/{PROJECT}/topics/mnist-predictions", row).result()
    result = streaming_shell.run(PULL)
    assert result.returncode == 0 and result.stdout.strip() == row.decode(), result.stderr


def test_the_streaming_launch_is_accepted_and_makes_a_streaming_job(
    streaming_shell, launcher, readme_streams, pubsub_emulator
):
    captured = streaming_shell.send_launch(FIRST_LAUNCH)
    assert captured.accepted and (captured.project, captured.location) == (PROJECT, REGION)
    assert captured.parameter["containerSpecGcsPath"] == STREAMING_SPEC
    assert captured.parameter["jobName"] == "mnist-stream"  # a fixed name: what --update replaces
    assert check_launch_parameters(captured.parameter["parameters"], STREAMING_TEMPLATE_METADATA) == []
    job = launch_as_the_launcher_does(captured, launcher, pubsub_emulator)
    assert job["type"] == "JOB_TYPE_STREAMING"
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["streaming"] is True and options["input"] == SUBSCRIPTION


def test_the_update_replaces_the_running_job_and_the_drain_stops_it(
    streaming_shell, launcher, readme_streams, pubsub_emulator, dataflow_api
):
    for job in dataflow_api.jobs.values():  # one active job of a name, as Dataflow allows: earlier tests' are done
        job["currentState"] = "JOB_STATE_CANCELLED"
    first = streaming_shell.send_launch(FIRST_LAUNCH)
    running = dataflow_api.jobs[max(dataflow_api.jobs)]
    assert running["name"] == first.parameter["jobName"]
    running["currentState"] = "JOB_STATE_RUNNING"

    assert RETRAINED in NEXT_VERSION
    result = streaming_shell.run(NEXT_VERSION.replace(RETRAINED, str(SAMPLE_MODEL)))
    assert result.returncode == 0, NEXT_VERSION + result.stderr
    captured = streaming_shell.send_launch(UPDATE)
    assert captured.accepted and captured.parameter["update"] is True
    assert captured.parameter["parameters"]["max_batch_wait_seconds"] == "1"
    job = launch_as_the_launcher_does(captured, launcher, pubsub_emulator)
    assert job["replaceJobId"] == running["id"]  # Beam found the running job by its name

    replacement = dataflow_api.jobs[max(dataflow_api.jobs)]
    running["currentState"], replacement["currentState"] = "JOB_STATE_UPDATED", "JOB_STATE_RUNNING"
    result = streaming_shell.run(DRAIN)
    assert result.returncode == 0, result.stderr
    assert replacement.get("requestedState") == "JOB_STATE_DRAINED"
    assert "requestedState" not in running
