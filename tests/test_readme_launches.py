"""The docs' `gcloud dataflow flex-template run` commands, read from README.md and docs/*.md and run as written
through the real gcloud CLI against the fake Dataflow API; then what gcloud sent is launched the way
the Flex Template launcher runs it (tests/launcher.py), end to end and offline."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cloud_shell import CloudShell, load_images_table
from tests.emulators import PROJECT
from tests.google_fakes import CapturedLaunch, check_launch_parameters
from tests.launch_fixtures import LAUNCH_BUCKET, TEMPLATE_IMAGE, TEMPLATE_METADATA
from tests.launcher import REGION, invocation_of
from tests.readme import commands_starting_with
from tests.tools import BQ, GCLOUD, require_tool, requires_tool

pytestmark = [
    pytest.mark.emulators,
    pytest.mark.slow,
    requires_tool(GCLOUD is not None, "gcloud is not installed: the README's launches cannot be run"),
]

LAUNCH = "gcloud dataflow flex-template run"
LAUNCHES = commands_starting_with(LAUNCH, containing="/batch-prediction.json")
STREAMING_LAUNCHES = commands_starting_with(LAUNCH, containing="/streaming-prediction.json")
TABLE_SETUP = commands_starting_with("bq mk") + commands_starting_with("bq load")
SPEC = f"gs://{LAUNCH_BUCKET}/templates/batch-prediction.json"
STREAMING_SPEC = f"gs://{LAUNCH_BUCKET}/templates/streaming-prediction.json"


def launch_id(command: str) -> str:
    return command.split('"')[1].split("-$(")[0]  # the job name's fixed part, e.g. mnist-query


@pytest.fixture(scope="module")
def shell(cloud_shell) -> CloudShell:
    return cloud_shell


@pytest.fixture(scope="module")
def sent(shell) -> Callable[[str], CapturedLaunch]:
    """What gcloud sends for a README command, each command run through gcloud once per module."""
    captured: dict[str, CapturedLaunch] = {}

    def send(command: str) -> CapturedLaunch:
        if command not in captured:
            captured[command] = shell.send_launch(command)
        return captured[command]

    return send


@pytest.fixture(scope="module")
def readme_tables(shell, bigquery_emulator) -> None:
    """The README's own `bq mk` and `bq load` lines, run against the BigQuery emulator, from a clean
    slate as a new project has (other tests use the same dataset)."""
    require_tool(BQ is not None, "the bq CLI (Google Cloud CLI) is not installed: the README's bq lines cannot be run")
    assert load_images_table(shell, bigquery_emulator, TABLE_SETUP, PROJECT) == 10_000


def test_the_docs_bq_mk_passes_over_the_dataset_made_before(shell, readme_tables):
    """The docs make the dataset in two places (Dataflow and local round trips): the second must not fail."""
    (make_dataset,) = [command for command in TABLE_SETUP if command.startswith("bq mk")]
    result = shell.run(make_dataset)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_shows_a_launch_for_each_kind_of_source():
    names = {launch_id(command) for command in LAUNCHES}
    assert {"mnist", "mnist-bq", "mnist-query"} <= names, names
    assert [launch_id(command) for command in STREAMING_LAUNCHES] == ["mnist-stream", "mnist-stream"]
    assert ["--update" in command for command in STREAMING_LAUNCHES] == [False, True]


@pytest.mark.parametrize("command", LAUNCHES, ids=launch_id)
def test_a_readme_launch_sends_what_the_template_accepts(sent, command):
    captured = sent(command)
    assert captured.accepted
    assert (captured.project, captured.location) == (PROJECT, REGION)
    launch = captured.parameter
    assert launch["containerSpecGcsPath"] == SPEC
    assert launch["jobName"].startswith(launch_id(command) + "-")
    assert check_launch_parameters(launch["parameters"], TEMPLATE_METADATA) == []
    assert launch["environment"]["tempLocation"] == f"gs://{LAUNCH_BUCKET}/tmp"


def test_a_query_with_commas_needs_the_alternate_delimiter(shell, sent, dataflow_api):
    """What the README warns about: written the obvious way, gcloud refuses it before sending."""
    (query_launch,) = [command for command in LAUNCHES if launch_id(command) == "mnist-query"]
    naive = query_launch.replace('--parameters="^~^', '--parameters="').replace("~", ",")
    before = len(dataflow_api.launches)
    result = shell.run(naive)
    assert result.returncode != 0 and "Bad syntax for dict arg" in result.stderr, result.stderr
    assert len(dataflow_api.launches) == before
    captured = sent(query_launch)
    assert captured.parameter["parameters"]["query"] == "SELECT key, image FROM mnist.images WHERE key < 100"


@pytest.mark.parametrize("command", LAUNCHES, ids=launch_id)
def test_a_readme_launch_runs_in_template_mode_end_to_end(sent, launcher, launch_samples, readme_tables, command):
    captured = sent(command)
    environment, parameters = invocation_of(captured.parameter, captured.project, captured.location, LAUNCH_BUCKET)
    launch = launcher.launch(parameters, environment)
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == []
    assert f"Job object written to {environment.template_location}" in launch.stdout
    job = launcher.read_json(environment.template_location)
    assert job["name"] == captured.parameter["jobName"]
    assert job["environment"]["workerPools"][0]["workerHarnessContainerImage"] == TEMPLATE_IMAGE
    options = job["environment"]["sdkPipelineOptions"]["options"]
    for name, value in captured.parameter["parameters"].items():
        assert str(options[name]) == value
