"""Launches as Dataflow launches them: main.py in the image's layout and environment, DataflowRunner,
template mode, against the GCS and BigQuery emulators, a fake GCE metadata server and a fake
Dataflow API (tests/launcher.py). What the launcher would submit is read back and checked the
way Dataflow's workers will meet it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLE_IMAGES, SAMPLE_MODEL
from tests.emulators import PROJECT, BigQueryEmulator, GcsEmulator
from tests.launch_fixtures import LAUNCH_BUCKET, TEMPLATE_IMAGE, upload
from tests.launcher import GUARD_DIR, FlexTemplateLauncher, Launch, LaunchEnvironment

pytestmark = [pytest.mark.emulators, pytest.mark.slow]

BUCKET = LAUNCH_BUCKET
DATASET = "mnist_launch"
ENVIRONMENT = LaunchEnvironment(project=PROJECT, bucket=BUCKET)
SEED_META = ROOT / "samples/seed-model/export.meta"


@pytest.fixture(scope="module")
def uris(launch_samples) -> dict[str, str]:
    return launch_samples


def text_parameters(uris: dict[str, str], **changes: str) -> dict[str, str]:
    return {
        "source": "text",
        "input": uris["images"],
        "output": f"gs://{BUCKET}/out/predictions",
        "model": uris["model"],
        **changes,
    }


def job_object(launcher: FlexTemplateLauncher, environment: LaunchEnvironment = ENVIRONMENT) -> dict:
    return launcher.read_json(environment.template_location)


def staged_objects(gcs: GcsEmulator, environment: LaunchEnvironment) -> list[str]:
    """What this launch staged: Beam stages under <staging_location>/<job name>.<timestamp>/."""
    prefix = environment.staging_location.removeprefix(f"gs://{BUCKET}/") + f"/{environment.job_name}."
    return sorted(blob.name for blob in gcs.client().list_blobs(BUCKET, prefix=prefix))


def staged_transform_names(launcher: FlexTemplateLauncher, environment: LaunchEnvironment) -> set[str]:
    """The unique names of every transform in the pipeline the launch staged for the workers."""
    from apache_beam.portability.api import beam_runner_api_pb2

    options = job_object(launcher, environment)["environment"]["sdkPipelineOptions"]["options"]
    proto = beam_runner_api_pb2.Pipeline.FromString(launcher.gcs.local_path(options["pipelineUrl"]).read_bytes())
    return {transform.unique_name for transform in proto.components.transforms.values()}


def assert_clean_template_launch(launch: Launch, environment: LaunchEnvironment = ENVIRONMENT) -> None:
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == [], "the launch reached beyond 127.0.0.1"
    assert f"Job object written to {environment.template_location}" in launch.stdout
    # Beam's own line, which users look for in the launcher's log.
    assert f"A template was just created at location {environment.template_location}" in launch.stderr


@pytest.fixture(scope="module")
def text_launch(launcher, uris) -> Launch:
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="text-launch", launch_id="text")
    launch = launcher.launch(text_parameters(uris), environment)
    launch.environment = environment
    return launch


def test_a_text_launch_writes_the_job_object_and_exits_0(text_launch):
    assert_clean_template_launch(text_launch, text_launch.environment)


def test_workers_run_the_template_image_and_nothing_else_is_staged(text_launch, launcher):
    environment = text_launch.environment
    job = job_object(launcher, environment)
    (pool,) = job["environment"]["workerPools"]
    assert pool["workerHarnessContainerImage"] == TEMPLATE_IMAGE
    assert {image["containerImage"] for image in pool["sdkHarnessContainerImages"]} == {TEMPLATE_IMAGE}
    assert pool.get("packages", []) == [], "nothing but the pipeline may be staged"
    options = job["environment"]["sdkPipelineOptions"]["options"]
    assert options["sdk_container_image"] == TEMPLATE_IMAGE
    assert options["save_main_session"] is False
    staged = staged_objects(launcher.gcs, environment)
    assert len(staged) == 1 and staged[0].endswith("/pipeline.pb"), staged
    assert options["pipelineUrl"] == f"gs://{BUCKET}/{staged[0]}"


def test_workers_share_the_files_and_the_records_of_a_few_large_ones(text_launch, launcher):
    names = staged_transform_names(launcher, text_launch.environment)
    assert "Read/Spread files" in names, "the worker that matched the files would read them all"
    assert "Read/Spread ranges" in names, "one large uncompressed file would be read by one worker"
    assert "Read/Spread batches" in names, "the worker reading one large gzip file would score it all"


def test_every_pickle_in_the_staged_pipeline_loads_in_a_bare_worker_process(text_launch, launcher, tmp_path):
    """A fresh process with only the image's template folder on PYTHONPATH, as on a worker."""
    options = job_object(launcher, text_launch.environment)["environment"]["sdkPipelineOptions"]["options"]
    pipeline_file = launcher.gcs.local_path(options["pipelineUrl"])
    result = subprocess.run(
        [sys.executable, "-P", str(GUARD_DIR / "worker_unpickle.py"), str(pipeline_file)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(launcher.image.path("/template"))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[1]) > 10, result.stdout


def test_a_bigquery_launch_writes_the_job_object_and_exits_0(launcher, uris, bigquery_emulator: BigQueryEmulator):
    from google.cloud import bigquery

    client = bigquery_emulator.client()
    client.create_dataset(DATASET, exists_ok=True)
    schema = [bigquery.SchemaField("key", "INTEGER"), bigquery.SchemaField("image", "STRING")]
    client.create_table(bigquery.Table(f"{PROJECT}.{DATASET}.images", schema=schema), exists_ok=True)
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="bigquery-launch", launch_id="bigquery")
    parameters = {
        "source": "bigquery",
        "input": f"{PROJECT}:{DATASET}.images",
        "sink": "bigquery",
        "output": f"{PROJECT}:{DATASET}.predict",
        "model": uris["model"],
    }
    launch = launcher.launch(parameters, environment)
    assert_clean_template_launch(launch, environment)
    (pool,) = job_object(launcher, environment)["environment"]["workerPools"]
    assert pool["workerHarnessContainerImage"] == TEMPLATE_IMAGE
    assert not {"Read/Spread files", "Read/Spread batches"} & staged_transform_names(launcher, environment)


def test_a_query_launch_is_checked_by_a_dry_run_and_exits_0(launcher, uris, bigquery_emulator):
    bigquery_emulator.client().create_dataset(DATASET, exists_ok=True)
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="query-launch", launch_id="query")
    parameters = {
        "source": "bigquery",
        "query": f"SELECT key, image FROM `{PROJECT}.{DATASET}.images` WHERE key < 100",
        "output": f"gs://{BUCKET}/out/from-query",
        "sink": "text",
        "model": uris["model"],
    }
    assert_clean_template_launch(launcher.launch(parameters, environment), environment)


def test_sdk_container_image_given_at_launch_wins(launcher, uris):
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="own-image", launch_id="own-image")
    own = "europe-docker.pkg.dev/other/images/batch-prediction:2"
    launch = launcher.launch(text_parameters(uris, sdk_container_image=own), environment)
    assert_clean_template_launch(launch, environment)
    (pool,) = job_object(launcher, environment)["environment"]["workerPools"]
    assert pool["workerHarnessContainerImage"] == own


def test_an_image_built_without_its_name_refuses_to_launch(launcher, uris):
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="no-image", launch_id="no-image")
    launch = launcher.launch(text_parameters(uris), environment, env_overrides={"TEMPLATE_IMAGE": ""})
    assert launch.returncode == 2, launch.output[-3000:]
    error = launch.stderr.strip().splitlines()
    assert error[-1].startswith("error: no worker image: this image was built without TEMPLATE_IMAGE"), error
    assert not launcher.gcs.local_path(environment.template_location).exists()
    assert staged_objects(launcher.gcs, environment) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"output": "/tmp/predictions"}, "error: --output=/tmp/predictions: a local path is lost with the workers"),
        ({"model": str(SAMPLE_MODEL)}, f"error: --model={SAMPLE_MODEL}: a local path cannot be read by the workers"),
        ({"input": str(SAMPLE_IMAGES)}, f"error: --input={SAMPLE_IMAGES}: a local path cannot be read by the workers"),
    ],
)
def test_local_paths_are_refused_at_launch(launcher, uris, changes, expected):
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="local-paths", launch_id="local-paths")
    launch = launcher.launch(text_parameters(uris, **changes), environment)
    assert launch.returncode == 2
    assert launch.stderr.strip().splitlines()[-1].startswith(expected), launch.stderr[-2000:]


@pytest.mark.parametrize("form", ["folder", "prefix"])
def test_a_tf1_checkpoint_launches_from_its_metagraph_alone(launcher, uris, form):
    """The 2017 sample's own export.meta, whose weights were never published: a launch needs only
    the graph (the weights are read by workers), given as the seed gave it (the folder) or as a prefix."""
    folder = upload(launcher.gcs, SEED_META, "seed-model/export.meta").rsplit("/", 1)[0]
    model = folder if form == "folder" else f"{folder}/export"
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name=f"seed-{form}", launch_id=f"seed-{form}")
    launch = launcher.launch(text_parameters(uris, model=model), environment)
    assert_clean_template_launch(launch, environment)


def test_a_savedmodel_launch_never_reads_the_weights(launcher, uris):
    """Only saved_model.pb is uploaded: the launch must not need variables/."""
    model = upload(launcher.gcs, SAMPLE_MODEL / "saved_model.pb", "graph-only/model/saved_model.pb").rsplit("/", 1)[0]
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="graph-only", launch_id="graph-only")
    assert_clean_template_launch(launcher.launch(text_parameters(uris, model=model), environment), environment)


def test_a_keras_launch_reads_only_the_config(launcher, uris, tmp_path):
    """A .keras file whose weights member is garbage still launches: only config.json is read."""
    import zipfile

    from tests.model_factories import keras_mnist_like

    good = keras_mnist_like(tmp_path / "good.keras")
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, b"\0" * len(data) if item.filename.endswith(".h5") else data)
    model = upload(launcher.gcs, broken, "keras/model.keras")
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="keras-config", launch_id="keras-config")
    assert_clean_template_launch(launcher.launch(text_parameters(uris, model=model), environment), environment)


def test_without_template_location_the_job_is_submitted_and_not_awaited(launcher, uris, dataflow_api):
    environment = LaunchEnvironment(PROJECT, BUCKET, job_name="direct-submit")
    before = set(dataflow_api.jobs)
    launch = launcher.launch(text_parameters(uris), environment, template_mode=False)
    assert launch.returncode == 0, launch.output[-4000:]
    assert launch.blocked == []
    (job_id,) = set(dataflow_api.jobs) - before
    job = dataflow_api.jobs[job_id]
    assert job["name"] == "direct-submit"
    assert f"Submitted job {job_id}: https://console.cloud.google.com/dataflow/jobs/{environment.region}/{job_id}" in (
        launch.stdout
    )
    assert [request.method for request in dataflow_api.requests if job_id in request.path] == [], "never polled"
