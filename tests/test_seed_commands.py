"""The 2017 sample's own README commands, run with this template.

Its upload steps (`gsutil cp data/export* $BUCKET/model/`, the unzipped images to
`$BUCKET/input/`), its two `python prediction/run.py` launches with only the script's path
changed to the template's `main.py`, its `bq mk` / `bq load`, and its two queries. What cannot
work as written fails with one line that names the modern form; everything else works unchanged.
"""

from __future__ import annotations

import gzip
import json
import shlex

import pytest

from main import run
from pipeline.evaluate import read_labels
from tests.cloud_shell import load_images_table
from tests.conftest import SAMPLE_IMAGES, SAMPLE_LABELS
from tests.emulators import PROJECT
from tests.launch_fixtures import LAUNCH_BUCKET, TEMPLATE_IMAGE, upload
from tests.readme import commands_starting_with
from tests.tools import BQ, require_tool, requires_tool

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

# Verbatim from GoogleCloudPlatform/dataflow-prediction-example's README, `$ ` prompts removed.
SEED_CS_RUN = """python prediction/run.py \\
      --runner DataflowRunner \\
      --project $PROJECT \\
      --staging_location $BUCKET/staging \\
      --temp_location $BUCKET/temp \\
      --job_name $PROJECT-prediction-cs \\
      --setup_file prediction/setup.py \\
      --model $BUCKET/model \\
      --source cs \\
      --input $BUCKET/input/images.txt \\
      --output $BUCKET/output/predict"""
SEED_BQ_RUN = """python prediction/run.py \\
      --runner DataflowRunner \\
      --project $PROJECT \\
      --staging_location $BUCKET/staging \\
      --temp_location $BUCKET/temp \\
      --job_name $PROJECT-prediction-bq \\
      --setup_file prediction/setup.py \\
      --model $BUCKET/model \\
      --source bq \\
      --input $PROJECT:mnist.images \\
      --output $PROJECT:mnist.predict"""
SEED_BQ_MK = "bq mk mnist"
SEED_BQ_LOAD = """bq load --source_format=CSV -F":" mnist.images data/images.txt.gz \\
      "key:integer,image:string\""""
DOCS_BQ_LOADS = commands_starting_with("bq load")
SEED_QUERY_FIRST_KEYS = "SELECT * FROM mnist.predict WHERE key < 10 ORDER BY key;"
# The README's own modern form of the load (see README, BigQuery).
MODERN_BQ_LOAD = (
    'bq load --source_format=CSV --field_delimiter=":" mnist.images data/images.txt.gz "key:integer,image:string"'
)

NO_BQ = "the bq CLI (Google Cloud CLI) is not installed: the sample's bq commands cannot be run"
SEED_VARIABLES = {"$PROJECT": PROJECT, "$BUCKET": f"gs://{LAUNCH_BUCKET}"}  # BUCKET=gs://$PROJECT-dataflow there


def seed_arguments(command: str) -> list[str]:
    """The command's arguments after `python prediction/run.py`, its variables filled in."""
    for name, value in SEED_VARIABLES.items():
        command = command.replace(name, value)
    words = shlex.split(command.replace("\\\n", " "))  # continuation lines, as the shell joins them
    assert words[:2] == ["python", "prediction/run.py"]
    return words[2:]


def in_data_folder(command: str) -> str:
    return command.replace("data/images.txt.gz", str(SAMPLE_IMAGES))  # the seed's data/ is samples/mnist/ here


@pytest.fixture(scope="module")
def seed_uploads(gcs_emulator, launch_bucket, legacy_checkpoint, tmp_path_factory) -> None:
    """`gsutil cp data/export* $BUCKET/model/`, then the images unzipped to `$BUCKET/input/images.txt`."""
    for path in sorted(legacy_checkpoint.parent.glob("export*")):
        upload(gcs_emulator, path, f"model/{path.name}")
    unzipped = tmp_path_factory.mktemp("seed") / "images.txt"
    unzipped.write_bytes(gzip.decompress(SAMPLE_IMAGES.read_bytes()))
    upload(gcs_emulator, unzipped, "input/images.txt")


@pytest.fixture(scope="module")
def seed_tables(cloud_shell, bigquery_emulator) -> None:
    require_tool(BQ is not None, NO_BQ)
    assert load_images_table(cloud_shell, bigquery_emulator, [SEED_BQ_MK, in_data_folder(MODERN_BQ_LOAD)], PROJECT) > 0


@requires_tool(BQ is not None, NO_BQ)
def test_the_seeds_bq_load_is_refused_by_todays_bq_and_the_readme_gives_the_form_that_works(cloud_shell):
    """Not the template's doing: the shell turns -F":" into -F:, which bq's flag parser refuses."""
    refused = cloud_shell.run(in_data_folder(SEED_BQ_LOAD))
    assert refused.returncode != 0 and "Unknown command line flag 'F:'" in refused.stdout + refused.stderr
    assert any("--field_delimiter=':'" in command for command in DOCS_BQ_LOADS)


@pytest.mark.parametrize("command", [SEED_CS_RUN, SEED_BQ_RUN], ids=["cloud-storage", "bigquery"])
def test_the_seeds_dataflow_runs_submit_a_job_from_the_template_image(
    launcher, dataflow_api, seed_uploads, request, command
):
    """`--model $BUCKET/model` is the folder holding export.*; --setup_file is not needed and says so."""
    if "--source bq" in command:
        request.getfixturevalue("seed_tables")
    before = set(dataflow_api.jobs)
    launch = launcher.run_main(seed_arguments(command))
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == []
    assert "note: --setup_file=prediction/setup.py is not needed and was not staged" in launch.stderr
    assert "note: --region is not set: the job runs in us-central1" in launch.stderr
    (job_id,) = set(dataflow_api.jobs) - before
    job = dataflow_api.jobs[job_id]
    assert job["name"] == seed_arguments(command)[seed_arguments(command).index("--job_name") + 1]
    assert job["environment"]["workerPools"][0]["workerHarnessContainerImage"] == TEMPLATE_IMAGE
    assert f"Submitted job {job_id}: https://console.cloud.google.com/dataflow/jobs/us-central1/{job_id}" in (
        launch.stdout
    )


def test_the_seeds_bigquery_round_trip_answers_its_query(cloud_emulators, cloud_shell, seed_tables, legacy_checkpoint):
    """The BigQuery run locally (DirectRunner) with the seed's flags and its model folder, then its query."""
    model_folder = legacy_checkpoint.parent
    status = run(
        [
            "--source",
            "bq",
            "--input",
            f"{PROJECT}:mnist.images",
            "--output",
            f"{PROJECT}:mnist.predict",
            "--model",
            str(model_folder),
            *cloud_emulators.beam_options(),
        ]
    )
    assert status == 0
    answer = cloud_shell.run(f"bq --format=json query --use_legacy_sql=false '{SEED_QUERY_FIRST_KEYS}'")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    rows = json.loads(answer.stdout)
    assert [int(row["key"]) for row in rows] == list(range(10))
    assert {f"pred{index}" for index in range(10)} <= set(rows[0])
    labels = read_labels(str(SAMPLE_LABELS))
    assert [int(row["prediction"]) for row in rows] == [labels[key] for key in range(10)]
